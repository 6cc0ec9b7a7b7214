//! Cost of one kubelet poll's processing (pure CPU, no HTTP): decode `/pods` (110 pods, the
//! kubelet's default maximum) and `/stats/summary`, find problems, dedupe. Prints us per
//! poll.
//!
//! `cargo bench -p tapio-plugin-kubelet --bench poll`

use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use tapio_plugin_kubelet::detect::{pod_findings, summary_findings, Reporter, Thresholds};
use tapio_plugin_kubelet::summary::Summary;

#[path = "../tests/it/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

#[derive(serde::Deserialize)]
struct PodList {
    items: Vec<Pod>,
}

fn main() {
    let five = fixtures::pods(5);
    let items: Vec<serde_json::Value> = (0..22)
        .flat_map(|round| {
            five["items"].as_array().unwrap().iter().map(move |p| {
                let mut p = p.clone();
                let uid = format!("{}-{round}", p["metadata"]["uid"].as_str().unwrap());
                p["metadata"]["uid"] = uid.into();
                p
            })
        })
        .collect();
    let pods_body =
        serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
            .to_string();
    let summary_body = fixtures::summary().to_string();
    let t = Thresholds {
        crash_loop_restarts: 3,
        not_ready_grace_ns: 30_000_000_000,
        memory_available_bytes: 104_857_600,
        ephemeral_storage_ratio: 0.5,
    };
    let polls = 500;
    let mut reporter = Reporter::default();
    let mut reported = 0;
    let start = Instant::now();
    for _ in 0..polls {
        let pods: PodList = serde_json::from_str(&pods_body).unwrap();
        let summary: Summary = serde_json::from_str(&summary_body).unwrap();
        let now = tapio_plugin_api::now_unix_nanos();
        let mut findings = Vec::new();
        pod_findings(&pods.items, &t, now, &mut findings);
        summary_findings(&summary, &pods.items, &t, now, &mut findings);
        reported += reporter.report(findings).len();
    }
    let took = start.elapsed();
    println!(
        "kubelet poll of 110 pods ({} KiB /pods, {} KiB summary): {:.0} us per poll, {} findings active, {reported} reported over {polls} polls",
        pods_body.len() / 1024,
        summary_body.len() / 1024,
        took.as_secs_f64() * 1e6 / polls as f64,
        reporter.active()
    );
}
