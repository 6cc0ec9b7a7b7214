//! Cost of a relist of 5,000 pods (pure CPU, no server): JSON decode of the list, then
//! attributes, change tracking and trace lookup per pod, as the watcher loop does it.
//! Prints ns per pod for each step.
//!
//! `cargo bench -p tapio-plugin-kubeapi --bench relist`

use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use tapio_k8s_support::owned_event;
use tapio_plugin_api::Severity;
use tapio_plugin_kubeapi::objects::{common_attributes, owner, Watched};
use tapio_plugin_kubeapi::trace::TraceIndex;
use tapio_plugin_kubeapi::tracker::KindTracker;

#[derive(serde::Deserialize)]
struct List {
    items: Vec<Pod>,
}

fn main() {
    let n = 5_000;
    let template: serde_json::Value =
        serde_json::from_str(include_str!("../tests/fixtures/pod-web.json")).unwrap();
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut p = template.clone();
            p["metadata"]["name"] = format!("web-{i}").into();
            p["metadata"]["uid"] = format!("5e6f7a8b-1c2d-4e3f-9a0b-{i:012}").into();
            p
        })
        .collect();
    let body = serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}).to_string();

    let start = Instant::now();
    let list: List = serde_json::from_str(&body).unwrap();
    let decode = start.elapsed();

    let mut tracker = KindTracker::default();
    let mut index = TraceIndex::default();
    let mut changes = 0;
    let start = Instant::now();
    for round in 0..2 {
        tracker.list_started();
        for pod in &list.items {
            let uid = pod.uid().unwrap_or_default();
            index.record(&uid, None, owner(&pod.metadata).map(|o| o.uid.as_str()));
            let mut e = owned_event(<Pod as Watched>::TYPES.added, Severity::Info, 0);
            common_attributes(&mut e, "Pod", &pod.metadata);
            e.severity = pod.describe(&mut e);
            if tracker.applied(&uid, &e.attributes).is_some() {
                e.trace = index.resolve(&uid);
                changes += 1;
            }
        }
        tracker.list_done();
        assert_eq!(
            changes, n,
            "round {round}: a relist of unchanged pods reports nothing"
        );
    }
    let process = start.elapsed();
    println!(
        "kubeapi relist of {n} pods ({} KiB of JSON): decode {:.1} us/pod, describe + track {:.1} us/pod",
        body.len() / 1024,
        decode.as_secs_f64() * 1e6 / n as f64,
        process.as_secs_f64() * 1e6 / (2 * n) as f64
    );
}
