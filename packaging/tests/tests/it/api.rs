//! The plugin-api compatibility promise, checked: the public API generated from rustdoc's
//! JSON equals the committed `plugin-api/public-api.txt`.

use crate::support::{cargo, ok, target_dir, text};

#[test]
fn the_plugin_api_matches_its_committed_public_api_snapshot() {
    let out = cargo()
        .args(["xtask", "api-snapshot", "--check"])
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshot =
        std::fs::read_to_string(crate::support::root().join("plugin-api/public-api.txt")).unwrap();
    // The snapshot covers the contract, not just names.
    for line in [
        "trait tapio_plugin_api::Collector",
        "fn tapio_plugin_api::Collector::start(self: &mut Self, sink: EventSink) -> Result<(), PluginError>",
        "field tapio_plugin_api::Event.timestamp_ns: u64",
        "const tapio_plugin_api::API_MINOR: u16 = 0",
        "macro tapio_plugin_api::export_plugin!",
    ] {
        assert!(snapshot.contains(line), "snapshot lacks {line:?}");
    }
    let _ = ok;
}
