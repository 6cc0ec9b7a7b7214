//! The operator guide: its generated sections equal what the code generates today, and
//! its troubleshooting section quotes messages the code really prints.

use crate::support::{cargo, root, target_dir, text};

#[test]
fn the_generated_references_in_operations_md_are_up_to_date() {
    let out = cargo()
        .args(["xtask", "docs", "--check"])
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let guide = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    for expected in [
        "| `plugins.strict_modes` | boolean | `true` |",
        "| `tapio_plugin_dropped_events_total` | counter |",
        "#### `kubeapi`",
    ] {
        assert!(guide.contains(expected), "operations.md lacks {expected:?}");
    }
}

/// Fixed parts of the messages quoted in the troubleshooting section, and where the code
/// prints them.
const MESSAGES: &[(&str, &str)] = &[
    ("eBPF unavailable: ", "plugins/ebpf-support/src"),
    ("loading eBPF programs needs CAP_BPF and CAP_PERFMON", "plugins/ebpf-support/src"),
    ("no Kubernetes config found", "plugins/kubeapi/src"),
    ("Status: Events=", "host/src"),
    ("no sink is configured: events are counted but not written (use --jsonl, --console or an exporter)", "host/src"),
    ("sink error (counted in tapio_sink_errors_total)", "host/src"),
    ("plugin failed to start", "host/src"),
    ("plugin file refused", "host/src"),
    ("plugin file refused; the running build keeps running", "host/src"),
    ("rolled back to the previous build", "host/src"),
    ("SIGHUP: config not reloaded; keeping the running one", "host/src"),
    ("plugin loaded but not started", "host/src"),
    ("is writable by {who} (mode {mode:04o}); run `chmod go-w {path}`", "host/src"),
    ("only root (0) or the service user ({service}) may own plugin files", "host/src"),
    ("is not in plugins.allowlist_sha256", "host/src"),
    ("incompatible plugin API: expected {}.x with x <= {}, found {} ({})", "plugin-api/src"),
    ("not a tapio plugin: no `TAPIO_PLUGIN_API_VERSION` symbol (build it with `tapio_plugin_api::export_plugin!`)", "host/src"),
    ("(this plugin accepts: {known})", "host/src"),
    ("no plugin named {name:?} in {}", "host/src"),
];

fn sources_under(dir: &std::path::Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// `{...}` placeholders replaced the way the guide shows them.
fn as_quoted(fragment: &str) -> String {
    let mut out = String::new();
    let mut rest = fragment;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        out.push('\u{0}');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn troubleshooting_quotes_messages_the_code_prints() {
    let guide = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    // Compared with whitespace collapsed: the guide wraps long lines.
    let section = guide[guide.find("## Troubleshooting").expect("section")..]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for (fragment, dir) in MESSAGES {
        let mut code = String::new();
        sources_under(&root().join(dir), &mut code);
        assert!(
            code.contains(fragment),
            "{dir} no longer prints {fragment:?}: update docs/operations.md"
        );
        // Every literal piece of the message appears in the guide.
        let quoted = as_quoted(fragment);
        for piece in quoted.split('\u{0}').map(str::trim).filter(|p| p.len() > 3) {
            assert!(
                section.contains(piece),
                "the troubleshooting section does not quote {piece:?} (from {fragment:?})"
            );
        }
    }
    // Every entry of both product documents' troubleshooting lists is covered.
    for entry in [
        "eBPF collector fails to start",
        "K8s collector fails",
        "High memory usage",
        "Missing events",
        "gRPC connection issues",
        "eBPF gRPC adapter errors",
        "Collector not starting",
        "eBPF errors on Linux",
        "Configuration issues",
    ] {
        assert!(section.contains(entry), "troubleshooting lacks {entry:?}");
    }
}
