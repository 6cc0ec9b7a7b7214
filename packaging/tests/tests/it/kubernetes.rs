//! The Kubernetes manifests: valid against the Kubernetes OpenAPI schemas
//! (kubernetes-validate, offline), consistent with each other, with the config the
//! collector accepts, and with the resources the kubeapi plugin watches.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_yaml_ng::Value;

use crate::support::{can_run, debug_plugins, host_bin, missing_tool, ok, root, text, venv_bin};

fn base() -> PathBuf {
    root().join("packaging/kubernetes/base")
}

/// The files the kustomization lists.
fn resources() -> Vec<String> {
    let k: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(base().join("kustomization.yaml")).unwrap(),
    )
    .unwrap();
    k["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

/// Every document of every listed file.
fn documents() -> Vec<Value> {
    let mut docs = Vec::new();
    for file in resources() {
        let text = std::fs::read_to_string(base().join(&file)).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap();
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    docs
}

use serde::Deserialize as _;

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas() {
    let validator = venv_bin("kubernetes-validate");
    if !can_run(
        "the_manifests_pass_the_kubernetes_schemas",
        missing_tool(&validator, &["--version"], "kubernetes-validate (PyPI)"),
    ) {
        return;
    }
    // Every file of the base is listed, every listed file exists.
    let listed: BTreeSet<String> = resources().into_iter().collect();
    let present: BTreeSet<String> = std::fs::read_dir(base())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml resources vs files");

    let files: Vec<PathBuf> = listed.iter().map(|f| base().join(f)).collect();
    let out = Command::new(&validator)
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let report = format!("{}{}", text(&out), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubernetes-validate:\n{report}");
    let passed = report.matches(" passed for resource ").count();
    assert_eq!(
        passed,
        documents().len(),
        "every resource validated:\n{report}"
    );

    // The validator is live: a wrong type and an unknown field are refused.
    let dir = tempfile::tempdir().unwrap();
    let daemonset = std::fs::read_to_string(base().join("daemonset.yaml")).unwrap();
    for (what, broken) in [
        (
            "a string hostPID",
            daemonset.replace("hostPID: true", "hostPID: \"yes\""),
        ),
        (
            "an unknown field",
            daemonset.replace("hostPID: true", "hostPID: true\n      hostPid: true"),
        ),
    ] {
        assert_ne!(broken, daemonset);
        let path = dir.path().join("daemonset.yaml");
        std::fs::write(&path, broken).unwrap();
        let out = Command::new(&validator)
            .arg("--strict")
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "kubernetes-validate accepted {what}");
    }
}

#[test]
fn the_daemonset_has_the_host_access_probes_and_scrape_annotations() {
    let docs = documents();
    let ds = find(&docs, "DaemonSet", "tapio-collector");
    let pod = &ds["spec"]["template"];
    let spec = &pod["spec"];
    assert_eq!(spec["hostPID"], true);
    let sa = spec["serviceAccountName"].as_str().unwrap();
    find(&docs, "ServiceAccount", sa);
    let c = &spec["containers"][0];
    let sc = &c["securityContext"];
    assert_ne!(sc["privileged"], true, "must not be privileged");
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    let add: BTreeSet<&str> = sc["capabilities"]["add"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for cap in ["BPF", "PERFMON"] {
        assert!(add.contains(cap), "capability {cap} missing");
    }
    assert!(!add.contains("SYS_ADMIN"), "SYS_ADMIN is not needed");
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");

    let volumes = spec["volumes"].as_sequence().unwrap();
    let host_path = |name: &str| -> String {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["hostPath"]["path"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let mounted: BTreeSet<String> = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| host_path(m["name"].as_str().unwrap()))
        .collect();
    for path in [
        "/sys",
        "/proc",
        "/sys/kernel/btf",
        "/run/containerd/containerd.sock",
        "/var/log/journal",
    ] {
        assert!(
            mounted.contains(path),
            "host path {path} not mounted: {mounted:?}"
        );
    }

    // Probes and scraping on the port the config's metrics endpoint binds.
    let port = c["ports"][0]["containerPort"].as_u64().unwrap();
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let ann = &pod["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"], "true");
    assert_eq!(ann["prometheus.io/port"], port.to_string().as_str());
    assert_eq!(ann["prometheus.io/path"], "/metrics");
    let cm = find(&docs, "ConfigMap", "tapio-collector-config");
    let config: Value =
        serde_yaml_ng::from_str(cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(
        config["metrics"]["addr"],
        format!("0.0.0.0:{port}").as_str()
    );
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let mount = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "config")
        .unwrap()["mountPath"]
        .as_str()
        .unwrap();
    assert!(
        args.contains(&format!("{mount}/config.yaml").as_str()),
        "--config does not point into the ConfigMap mount: {args:?}"
    );
}

#[test]
fn the_configmap_config_passes_check_config_against_the_shipped_plugins() {
    let docs = documents();
    let cm = find(&docs, "ConfigMap", "tapio-collector-config");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let out = ok(Command::new(host_bin())
        .env("NODE_NAME", "node-a")
        .env("NODE_IP", "10.1.2.3")
        .arg("check-config")
        .arg(&file)
        .arg("--plugins-dir")
        .arg(debug_plugins()));
    let report = text(&out);
    assert!(
        report.contains("valid (3 collector section(s) checked"),
        "{report}"
    );
    assert!(!report.contains("warning"), "{report}");
}

/// The `one of:` list of a field in `plugins inspect` output.
fn choices_of(inspect: &str, field: &str) -> BTreeSet<String> {
    let mut lines = inspect
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(field));
    lines.next().expect("field listed");
    let line = lines.next().expect("choices line");
    let list = line.split("one of:").nth(1).expect("one of:");
    list.split(',').map(|s| s.trim().to_owned()).collect()
}

#[test]
fn rbac_grants_exactly_what_the_kubeapi_plugin_watches_read_only() {
    let plugin = debug_plugins().join("kubeapi.so");
    let inspect = text(&ok(Command::new(host_bin())
        .args(["plugins", "inspect"])
        .arg(&plugin)));
    let watched = choices_of(&inspect, "resources");
    assert!(watched.contains("pods"), "{watched:?}");
    let docs = documents();
    let role = find(&docs, "ClusterRole", "tapio-collector");
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_sequence().unwrap() {
        let verbs: BTreeSet<&str> = rule["verbs"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            verbs,
            BTreeSet::from(["list", "watch"]),
            "read-only: {rule:?}"
        );
        for r in rule["resources"].as_sequence().unwrap() {
            granted.insert(r.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        granted, watched,
        "ClusterRole resources vs kubeapi's `resources` choices"
    );
    let kubelet = find(&docs, "ClusterRole", "tapio-collector-kubelet");
    for rule in kubelet["rules"].as_sequence().unwrap() {
        assert_eq!(rule["verbs"].as_sequence().unwrap().len(), 1);
        assert_eq!(rule["verbs"][0], "get");
    }
    for binding in ["tapio-collector", "tapio-collector-kubelet"] {
        let b = find(&docs, "ClusterRoleBinding", binding);
        assert_eq!(b["roleRef"]["name"], binding);
        assert_eq!(b["subjects"][0]["name"], "tapio-collector");
        assert_eq!(b["subjects"][0]["namespace"], "tapio-system");
    }
}
