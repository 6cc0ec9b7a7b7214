//! Tests of the entity graph: observation, resolution through every table, enrichment.

use super::*;
use crate::correlate::vocab::attr;
use crate::event::{Attribute, Severity, Value};

const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const UID: &str = "1b2c3d4e-0000-1111-2222-333344445555";

fn ev(t: &str, at: u64, attrs: &[(&str, Value)]) -> Event {
    let mut e = Event::new(t, "test", Severity::Info, at);
    for (k, v) in attrs {
        e.attributes.push(Attribute {
            key: CompactString::new(*k),
            value: v.clone(),
        });
    }
    e
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn graph_with_pod() -> EntityGraph {
    let mut g = EntityGraph::new(EntityLimits::default());
    g.observe(&ev(
        "k8s.replicaset.added",
        1,
        &[
            (attr::OBJECT_KIND, s("ReplicaSet")),
            (attr::OBJECT_NAME, s("web-7d9")),
            (attr::NAMESPACE, s("prod")),
            (attr::OWNER_KIND, s("Deployment")),
            (attr::OWNER_NAME, s("web")),
        ],
    ));
    g.observe(&ev(
        "k8s.pod.added",
        2,
        &[
            (attr::OBJECT_KIND, s("Pod")),
            (attr::POD_UID, s(UID)),
            (attr::POD_NAME, s("web-7d9-abc")),
            (attr::NAMESPACE, s("prod")),
            (attr::NODE, s("node-1")),
            (attr::OWNER_KIND, s("ReplicaSet")),
            (attr::OWNER_NAME, s("web-7d9")),
            (attr::POD_IP, s("10.0.0.5")),
            (attr::OBJECT_LABELS, s("app=web,tier=front")),
        ],
    ));
    g.observe(&ev(
        "k8s.service.added",
        3,
        &[
            (attr::OBJECT_KIND, s("Service")),
            (attr::OBJECT_NAME, s("web")),
            (attr::NAMESPACE, s("prod")),
            (attr::SERVICE_SELECTOR, s("app=web")),
            (attr::SERVICE_IP, s("10.96.0.10")),
        ],
    ));
    let mut cri = ev(
        "cri.container.started",
        4,
        &[(attr::CONTAINER_ID, s(CID)), (attr::POD_UID, s(UID))],
    );
    cri.container_id = Some(CID.into());
    g.observe(&cri);
    g
}

/// [`graph_with_pod`] with process 42 (`nginx`, cgroup 900) started in its container.
fn graph_with_process_in_pod() -> EntityGraph {
    let mut g = graph_with_pod();
    let mut exec = ev("kernel.process.exec", 5, &[(attr::PROCESS_EXE, s("nginx"))]);
    exec.pid = Some(42);
    exec.cgroup_id = Some(900);
    exec.container_id = Some(CID.into());
    g.observe(&exec);
    g
}

/// A kernel event that names only pid 42.
fn oom_of_pid_42() -> Event {
    let mut oom = ev("kernel.memory.oom_kill", 6, &[]);
    oom.pid = Some(42);
    oom
}

#[test]
fn a_resolution_borrows_the_graphs_ids_and_owns_only_the_events_own() {
    let g = graph_with_process_in_pod();
    let r = g.resolve(&oom_of_pid_42());
    let held = |id: &Option<Name>| id.clone().expect("the process entry holds the id");
    let proc = g.procs.get(&42).expect("process 42");
    let (container, pod) = (held(&proc.container), held(&proc.pod_uid));
    // The very allocations of the process entry, by reference: no count taken.
    assert!(matches!(&r.container, Some(Id::Graph(c)) if Arc::ptr_eq(c, &container)));
    assert!(matches!(&r.pod_uid, Some(Id::Graph(p)) if Arc::ptr_eq(p, &pod)));
    // Owned, it is the same ids and the same allocation, counted now.
    let owned = r.clone().into_owned();
    assert_eq!(owned, r);
    assert!(matches!(&owned.container, Some(Id::Event(c)) if Arc::ptr_eq(c, &container)));
    // An id no table holds is the event's own.
    let mut stranger = ev("container.exit", 7, &[]);
    stranger.container_id = Some("not-known-here".into());
    let r = g.resolve(&stranger);
    assert!(matches!(&r.container, Some(Id::Event(c)) if &**c == "not-known-here"));
}

#[test]
fn each_process_resolves_to_its_own_entry_whichever_was_observed_last() {
    let mut g = graph_with_process_in_pod();
    // Observing another process points the graph's process hint at it.
    let mut other = ev("kernel.process.exec", 7, &[(attr::PROCESS_EXE, s("sh"))]);
    other.pid = Some(43);
    g.observe(&other);
    // Pid 42 is read from its own entry (the hint's key does not match), then 43 again.
    let r = g.resolve(&oom_of_pid_42());
    assert_eq!(r.container.as_deref(), Some(CID));
    assert_eq!(g.describe(&r).exe, Some("nginx"));
    let mut of_43 = ev("kernel.memory.oom_kill", 8, &[]);
    of_43.pid = Some(43);
    let r = g.resolve(&of_43);
    assert_eq!(r.container, None);
    assert_eq!(g.describe(&r).exe, Some("sh"));
    assert!(g.knows_process(42));
    assert!(!g.knows_process(43), "43 names no container or cgroup path");
}

#[test]
fn pid_resolves_through_cgroup_container_pod_to_deployment() {
    let g = graph_with_process_in_pod();
    // A later kernel event with only a pid.
    let mut oom = oom_of_pid_42();
    let r = g.resolve(&oom);
    assert_eq!(r.container.as_deref(), Some(CID));
    assert_eq!(r.pod_uid.as_deref(), Some(UID));
    let d = g.describe(&r);
    assert_eq!(d.pod_name, Some("web-7d9-abc"));
    assert_eq!(d.namespace, Some("prod"));
    assert_eq!(d.workload_kind, Some("Deployment"));
    assert_eq!(d.workload_name, Some("web"));
    assert_eq!(d.exe, Some("nginx"));
    enrich(&mut oom, &g, &r);
    assert_eq!(oom.container_id.as_deref(), Some(CID));
    assert_eq!(oom.attribute(attr::DEPLOYMENT), Some(&s("web")));
    assert_eq!(oom.attribute(attr::NODE), Some(&s("node-1")));
    assert_eq!(
        r.workload_key().as_deref(),
        Some(format!("pod/{UID}").as_str())
    );
    // The cgroup alone also resolves.
    let mut by_cgroup = ev("storage.io.slow", 7, &[]);
    by_cgroup.cgroup_id = Some(900);
    assert_eq!(g.resolve(&by_cgroup).pod_uid.as_deref(), Some(UID));
}

#[test]
fn enrichment_keeps_what_the_plugin_said() {
    let g = graph_with_pod();
    let mut e = ev(
        "x",
        1,
        &[(attr::POD_UID, s(UID)), (attr::POD_NAME, s("given"))],
    );
    let r = g.resolve(&e);
    enrich(&mut e, &g, &r);
    assert_eq!(e.attribute(attr::POD_NAME), Some(&s("given")));
    assert_eq!(
        e.attributes
            .iter()
            .filter(|a| a.key == attr::POD_NAME)
            .count(),
        1
    );
}

#[test]
fn cgroup_path_names_units_and_proc_fallback_fills_in() {
    let mut g = EntityGraph::new(EntityLimits::default());
    let mut e = ev("x", 1, &[]);
    e.pid = Some(7);
    assert_eq!(g.resolve(&e).unit, None);
    g.learn_proc_cgroup(7, "/system.slice/redis.service", None, 2);
    assert!(g.knows_process(7));
    assert_eq!(g.resolve(&e).unit.as_deref(), Some("redis.service"));
    assert_eq!(
        g.resolve(&e).workload_key().as_deref(),
        Some("unit/redis.service")
    );
}

/// A refused connect to `peer` from pid 100 in cgroup 5, observed and recorded as traffic.
fn connect_to(g: &mut EntityGraph, peer: &str, at: u64) {
    let mut connect = ev(
        "kernel.network.connect_refused",
        at,
        &[(attr::PEER_ADDR, s(peer))],
    );
    connect.pid = Some(100);
    connect.cgroup_id = Some(5);
    g.observe(&connect);
    let r = g.resolve(&connect).into_owned();
    g.observe_peer(&connect, &r);
}

#[test]
fn services_and_dependents_come_from_observed_traffic() {
    let mut g = graph_with_pod();
    assert_eq!(
        g.services_of_pod(UID, &g.service_selectors()),
        vec![CompactString::new("prod/web")]
    );
    connect_to(&mut g, "10.0.0.5", 9);
    let key = format!("pod/{UID}");
    assert_eq!(
        g.dependents(Some(&key), None),
        vec![CompactString::new("cgroup/5")]
    );
    assert_eq!(
        g.dependents(None, Some("10.0.0.5")),
        vec![CompactString::new("cgroup/5")]
    );
}

fn service(g: &mut EntityGraph, ns: &str, name: &str, selector: &str, ip: &str) {
    g.observe(&ev(
        "k8s.service.added",
        4,
        &[
            (attr::OBJECT_KIND, s("Service")),
            (attr::OBJECT_NAME, s(name)),
            (attr::NAMESPACE, s(ns)),
            (attr::SERVICE_SELECTOR, s(selector)),
            (attr::SERVICE_IP, s(ip)),
        ],
    ));
}

#[test]
fn a_pods_services_are_those_whose_whole_selector_its_labels_match_in_its_namespace() {
    let mut g = graph_with_pod();
    // The pod is `app=web,tier=front` in `prod`.
    service(&mut g, "prod", "front", "tier=front", "10.96.0.11");
    service(
        &mut g,
        "prod",
        "web-front",
        "app=web, tier=front",
        "10.96.0.12",
    );
    service(
        &mut g,
        "prod",
        "web-back",
        "app=web,tier=back",
        "10.96.0.13",
    );
    service(&mut g, "staging", "web", "app=web", "10.96.1.10");
    service(&mut g, "prod", "everything", "", "10.96.0.14");
    let expected: Vec<CompactString> = ["prod/front", "prod/web", "prod/web-front"]
        .into_iter()
        .map(CompactString::new)
        .collect();
    assert_eq!(g.services_of_pod(UID, &g.service_selectors()), expected);
    // The same answer through an index kept for many pods.
    {
        let index = g.service_selectors();
        assert_eq!(g.services_of_pod(UID, &index), expected);
    }
    // The index follows changes: a selector that stops matching, a new service.
    service(&mut g, "prod", "front", "tier=edge", "10.96.0.11");
    assert_eq!(
        g.services_of_pod(UID, &g.service_selectors()),
        ["prod/web", "prod/web-front"]
            .map(CompactString::new)
            .to_vec()
    );
    service(&mut g, "prod", "all-web", "app=web", "10.96.0.15");
    assert_eq!(
        g.services_of_pod(UID, &g.service_selectors()),
        ["prod/all-web", "prod/web", "prod/web-front"]
            .map(CompactString::new)
            .to_vec()
    );
}

#[test]
fn a_workload_has_no_dependents_through_an_address_another_pod_took() {
    let mut g = graph_with_pod();
    connect_to(&mut g, "10.0.0.5", 9);
    let key = format!("pod/{UID}");
    assert_eq!(g.dependents(Some(&key), None).len(), 1);
    // Another pod is given 10.0.0.5: its clients are no longer this pod's dependents.
    g.observe(&ev(
        "k8s.pod.added",
        10,
        &[
            (attr::OBJECT_KIND, s("Pod")),
            (attr::POD_UID, s("other-uid")),
            (attr::NAMESPACE, s("prod")),
            (attr::POD_IP, s("10.0.0.5")),
        ],
    ));
    assert!(g.dependents(Some(&key), None).is_empty());
    assert_eq!(
        g.dependents(Some("pod/other-uid"), None),
        vec![CompactString::new("cgroup/5")]
    );
    // A service's dependents come through its cluster IP.
    connect_to(&mut g, "10.96.0.10", 11);
    assert_eq!(
        g.dependents(Some("service/prod/web"), None),
        vec![CompactString::new("cgroup/5")]
    );
}

#[test]
fn tables_stay_bounded_under_unique_entities() {
    let limits = EntityLimits {
        max_processes: 1000,
        max_workloads: 500,
        max_peers: 500,
        ttl_ns: u64::MAX,
    };
    let mut g = EntityGraph::new(limits);
    for i in 0..100_000u32 {
        let mut e = ev(
            "x",
            u64::from(i),
            &[(attr::PEER_ADDR, s(&format!("10.1.{}.{}", i / 256, i % 256)))],
        );
        e.pid = Some(i);
        e.cgroup_id = Some(u64::from(i) + 1);
        e.container_id = Some(format!("{i:064x}").into());
        g.observe(&e);
        let r = g.resolve(&e).into_owned();
        g.observe_peer(&e, &r);
    }
    let sizes = g.sizes();
    assert!(sizes.processes <= 1000, "{sizes:?}");
    assert!(sizes.cgroups <= 500 && sizes.containers <= 500, "{sizes:?}");
    assert!(sizes.peers <= 1000, "{sizes:?}");
    assert!(sizes.evicted > 0);
}

#[test]
fn a_process_finds_its_pod_through_the_hint_after_the_pod_table_moved_and_not_after_it_went() {
    let mut g = EntityGraph::new(EntityLimits {
        max_workloads: 64,
        ..EntityLimits::default()
    });
    let pod = |uid: &str, name: &str, at: u64| {
        ev(
            "k8s.pod.added",
            at,
            &[
                (attr::OBJECT_KIND, s("Pod")),
                (attr::POD_UID, s(uid)),
                (attr::POD_NAME, s(name)),
            ],
        )
    };
    g.observe(&pod(UID, "web-1", 1));
    let mut exec = ev("kernel.process.exec", 2, &[(attr::POD_UID, s(UID))]);
    exec.pid = Some(42);
    g.observe(&exec);
    let mut later = ev("kernel.process.exit", 3, &[]);
    later.pid = Some(42);
    // Kept across the graph's changes below: owned.
    let r = g.resolve(&later).into_owned();
    assert_eq!(g.describe(&r).pod_name, Some("web-1"));
    let hint = g.procs.get(&42).and_then(|p| p.hints.pod.get());
    assert!(hint.is_some(), "the lookup left a hint");
    // The table grows (rehash): the pod is still found, under its own name.
    for i in 0..40u64 {
        g.observe(&pod(&format!("other-{i}"), &format!("o-{i}"), 10 + i));
    }
    g.observe(&pod(UID, "web-1", 60));
    assert_eq!(g.describe(&r).pod_name, Some("web-1"));
    // The pod is evicted by newer ones, and another pod takes its bucket: the hint does not
    // hand that pod out as this one.
    let bucket = g
        .procs
        .get(&42)
        .and_then(|p| p.hints.pod.get())
        .expect("hint");
    let mut i = 100u64;
    while g.pods.get(UID).is_some() || g.pods.get_in_bucket(bucket, |_| true).is_none() {
        g.observe(&pod(&format!("other-{i}"), &format!("o-{i}"), 100 + i));
        i += 1;
        assert!(i < 100_000, "the bucket is taken again eventually");
    }
    assert_eq!(g.describe(&r).pod_name, None);
}

/// An event of process 42 in the pod of [`graph_with_pod`], enriched.
fn enriched_event_of_pod(g: &mut EntityGraph, at: u64) -> Event {
    let mut exec = ev("kernel.process.exec", at, &[]);
    exec.pid = Some(42);
    exec.container_id = Some(CID.into());
    g.observe(&exec);
    let mut e = ev("storage.io.slow", at, &[]);
    e.pid = Some(42);
    let r = g.resolve(&e);
    enrich(&mut e, g, &r);
    e
}

#[test]
fn events_of_one_pod_share_one_list_of_its_attributes() {
    let mut g = graph_with_pod();
    let a = enriched_event_of_pod(&mut g, 10);
    let b = enriched_event_of_pod(&mut g, 11);
    let (Some(la), Some(lb)) = (&a.shared_attributes, &b.shared_attributes) else {
        panic!("both events got the pod's list: {a:?} {b:?}");
    };
    assert!(Arc::ptr_eq(la, lb), "one list, not a copy per event");
    let keys: Vec<&str> = la.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            attr::POD_UID,
            attr::POD_NAME,
            attr::NAMESPACE,
            attr::NODE,
            attr::DEPLOYMENT
        ]
    );
    // Read like the event's own attributes; none of them copied into the event.
    assert_eq!(a.attribute(attr::POD_UID), Some(&s(UID)));
    assert_eq!(a.attribute(attr::DEPLOYMENT), Some(&s("web")));
    assert!(a.attributes.iter().all(|x| !x.key.starts_with("k8s.")));
    // An event that names its pod itself gets the missing keys appended instead: no key twice.
    let mut own = ev("x", 12, &[(attr::NAMESPACE, s("given"))]);
    own.pid = Some(42);
    let r = g.resolve(&own);
    enrich(&mut own, &g, &r);
    assert_eq!(own.shared_attributes, None);
    assert_eq!(own.attribute(attr::NAMESPACE), Some(&s("given")));
    assert_eq!(own.attribute(attr::POD_NAME), Some(&s("web-7d9-abc")));
    let namespaces = own.all_attributes().filter(|a| a.key == attr::NAMESPACE);
    assert_eq!(namespaces.count(), 1);
}

#[test]
fn a_pods_list_follows_the_pod_and_its_workload() {
    let mut g = graph_with_pod();
    let first = enriched_event_of_pod(&mut g, 10);
    // The pod is renamed (a new observation of the same uid): a new list.
    g.observe(&ev(
        "k8s.pod.updated",
        20,
        &[
            (attr::OBJECT_KIND, s("Pod")),
            (attr::POD_UID, s(UID)),
            (attr::POD_NAME, s("web-7d9-xyz")),
        ],
    ));
    let renamed = enriched_event_of_pod(&mut g, 21);
    assert_eq!(first.attribute(attr::POD_NAME), Some(&s("web-7d9-abc")));
    assert_eq!(renamed.attribute(attr::POD_NAME), Some(&s("web-7d9-xyz")));
    // The ReplicaSet now says another Deployment owns it: the pod's workload follows.
    g.observe(&ev(
        "k8s.replicaset.updated",
        30,
        &[
            (attr::OBJECT_KIND, s("ReplicaSet")),
            (attr::OBJECT_NAME, s("web-7d9")),
            (attr::NAMESPACE, s("prod")),
            (attr::OWNER_KIND, s("Deployment")),
            (attr::OWNER_NAME, s("web-v2")),
        ],
    ));
    let moved = enriched_event_of_pod(&mut g, 31);
    assert_eq!(moved.attribute(attr::DEPLOYMENT), Some(&s("web-v2")));
    // The ReplicaSet expires (the pod is refreshed, the ReplicaSet is not): the workload is
    // the ReplicaSet again, as `describe` says.
    let ttl = EntityLimits::default().ttl_ns;
    let late = 31 + ttl / 2 + 1;
    g.observe(&ev(
        "k8s.pod.updated",
        late,
        &[
            (attr::OBJECT_KIND, s("Pod")),
            (attr::POD_UID, s(UID)),
            (attr::POD_NAME, s("web-7d9-xyz")),
        ],
    ));
    let _ = enriched_event_of_pod(&mut g, late);
    g.expire(31 + ttl + 1);
    let after = enriched_event_of_pod(&mut g, 31 + ttl + 2);
    assert_eq!(after.attribute(attr::DEPLOYMENT), None);
    assert_eq!(after.attribute(attr::REPLICASET), Some(&s("web-7d9")));
    let r = g.resolve(&after);
    assert_eq!(g.describe(&r).workload_kind, Some("ReplicaSet"));
}
