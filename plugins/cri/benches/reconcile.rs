//! Cost of one CRI listing reconciliation (pure CPU, no runtime): a node with 110 pods and
//! 330 containers, of which 10 changed state. Prints ns per reconcile.
//!
//! `cargo bench -p tapio-plugin-cri --bench reconcile`

use std::time::Instant;

use tapio_plugin_cri::model::{ContainerPhase, ContainerView, PodView, StatusDetails};
use tapio_plugin_cri::tracker::Tracker;

fn listing(round: usize) -> (Vec<PodView>, Vec<ContainerView>) {
    let pods: Vec<PodView> = (0..110)
        .map(|i| PodView {
            id: format!("sandbox-{i:04}-{}", "f".repeat(52)),
            name: format!("app-{i}"),
            namespace: "shop".into(),
            uid: format!("uid-{i}"),
            attempt: 0,
            ready: true,
            created_at_ns: 1,
            runtime_handler: String::new(),
        })
        .collect();
    let containers = (0..330)
        .map(|i| {
            // Ten containers flip between running and exited every round.
            let flipping = i < 10 && round % 2 == 1;
            ContainerView {
                id: format!("container-{i:04}-{}", "e".repeat(50)),
                sandbox_id: pods[i % 110].id.clone(),
                name: format!("c{i}"),
                attempt: 0,
                image: "registry.example/app:1".into(),
                image_ref: "sha256:0123".into(),
                phase: if flipping {
                    ContainerPhase::Exited
                } else {
                    ContainerPhase::Running
                },
                created_at_ns: 2,
                pod_name: String::new(),
                pod_namespace: String::new(),
                pod_uid: String::new(),
                status: Some(StatusDetails {
                    started_at_ns: 3,
                    finished_at_ns: if flipping { 4 } else { 0 },
                    ..Default::default()
                }),
            }
        })
        .collect();
    (pods, containers)
}

fn main() {
    let rounds = 2_000;
    let listings: Vec<_> = (0..rounds).map(listing).collect();
    let mut tracker = Tracker::new();
    let mut changes = 0usize;
    let start = Instant::now();
    for (pods, containers) in listings {
        changes += tracker.reconcile(pods, containers, 5).len();
    }
    let took = start.elapsed();
    println!(
        "cri reconcile: 110 pods / 330 containers: {:.1} us per listing, {changes} changes over {rounds} listings",
        took.as_secs_f64() * 1e6 / rounds as f64
    );
}
