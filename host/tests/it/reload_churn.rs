//! 100 replace cycles of a running plugin: memory growth per cycle stays under 1 MB and the
//! retained libraries are counted.

use std::time::Duration;

use crate::support::{example_release_lib, install_bytes, Host, HostOptions};

#[test]
fn one_hundred_replace_cycles_grow_rss_by_less_than_1_mb_each() {
    const CYCLES: usize = 100;
    const WARMUP: usize = 5;
    let base = std::fs::read(example_release_lib()).unwrap();
    // Distinct builds: the same library with a different trailing marker (ignored by the
    // loader, but a different sha256, so every cycle loads a new library).
    let variant = |i: usize| {
        let mut bytes = base.clone();
        bytes.extend_from_slice(format!("\ntapio-reload-test-{i:04}\n").as_bytes());
        bytes
    };
    let host = Host::start(HostOptions {
        yaml: "collectors:\n  example:\n    config:\n      interval: 10ms\n".into(),
        ..HostOptions::default()
    });
    let mut rss_after_warmup = 0;
    for i in 0..=CYCLES {
        install_bytes(&variant(i), &host.plugins, "example.so", 0o644);
        let expect = i as f64;
        host.wait_metric(
            "tapio_plugin_reloads_total",
            "plugin=\"example\"",
            Duration::from_secs(20),
            |v| v == expect,
        );
        if i == WARMUP {
            rss_after_warmup = host.rss_kb();
        }
    }
    let rss_end = host.rss_kb();
    let growth_kb = rss_end.saturating_sub(rss_after_warmup) as f64 / (CYCLES - WARMUP) as f64;
    let retained = host.metric("tapio_plugins_retained_libraries", "").unwrap();
    eprintln!(
        "reload churn: {CYCLES} replace cycles of a {} kB plugin; RSS {rss_after_warmup} kB after {WARMUP} cycles -> {rss_end} kB; growth {growth_kb:.0} kB per cycle; retained libraries {retained}",
        base.len() / 1024
    );
    assert_eq!(
        retained,
        (CYCLES + 1) as f64,
        "every distinct build is retained and counted"
    );
    assert!(
        growth_kb < 1024.0,
        "RSS grew {growth_kb:.0} kB per reload cycle (limit 1 MB)"
    );
    assert!(host
        .wait_events(Duration::from_secs(2), |e| !e.is_empty())
        .is_some());
}
