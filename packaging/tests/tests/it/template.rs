//! The plugin template builds OUTSIDE the repository against released-form crates: the
//! `.crate` files `cargo package` makes of tapio-plugin-api and tapio-plugin-testkit (what
//! crates.io would serve), unpacked and patched in for the `0.1` requirements; its own
//! tests (on the testkit) pass, and the host loads the built `.so`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{cargo, host_bin, ok, root, target_dir, text};

/// `cargo package` of both crates at once (the testkit depends on the unpublished API
/// crate: cargo resolves it from the package being made).
fn package_both() {
    ok(cargo()
        .args(["package", "--no-verify", "--allow-dirty"])
        .args(["-p", "tapio-plugin-api", "-p", "tapio-plugin-testkit"])
        .env("CARGO_TARGET_DIR", target_dir()));
}

/// The `.crate` of `package`, unpacked into `dir`; returns the crate's directory.
fn released(package: &str, dir: &Path) -> PathBuf {
    let file = target_dir().join(format!("package/{package}-0.1.0.crate"));
    ok(Command::new("tar")
        .arg("-xzf")
        .arg(&file)
        .arg("-C")
        .arg(dir));
    let unpacked = dir.join(format!("{package}-0.1.0"));
    let manifest = std::fs::read_to_string(unpacked.join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("workspace = true") && !manifest.contains("path = \".."),
        "the packaged manifest of {package} still refers to the workspace:\n{manifest}"
    );
    unpacked
}

#[test]
fn the_plugin_template_builds_outside_the_tree_and_passes_its_tests() {
    let work = tempfile::Builder::new()
        .prefix("tapio-template-")
        .tempdir()
        .unwrap();
    assert!(
        !work.path().starts_with(root()),
        "must be outside the repository"
    );
    let registry = work.path().join("registry");
    std::fs::create_dir(&registry).unwrap();
    package_both();
    let api = released("tapio-plugin-api", &registry);
    let testkit = released("tapio-plugin-testkit", &registry);

    // A copy of the template, as a third party would take it.
    let crate_dir = work.path().join("dircount");
    ok(Command::new("cp")
        .arg("-r")
        .arg(root().join("plugin-api/template"))
        .arg(&crate_dir));
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("tapio-plugin-api = \"0.1\""),
        "depends on the released API"
    );
    assert!(manifest.contains("tapio-plugin-testkit = \"0.1\""));
    assert!(
        !manifest.contains("path ="),
        "the template must not use path dependencies"
    );
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        format!(
            "{manifest}\n[patch.crates-io]\ntapio-plugin-api = {{ path = {:?} }}\ntapio-plugin-testkit = {{ path = {:?} }}\n",
            api.display().to_string(),
            testkit.display().to_string()
        ),
    )
    .unwrap();

    let target = target_dir().join("plugin-template");
    let out = ok(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .arg("test")
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", &target),
    );
    let report = format!("{}{}", text(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        report.contains("test result: ok. 5 passed; 0 failed"),
        "the template's tests did not all run and pass:\n{report}"
    );
    // Built against the packaged crates, not the workspace.
    let tree = text(&ok(Command::new(
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
    )
    .args(["tree", "-p", "tapio-plugin-api", "--depth", "0"])
    .current_dir(&crate_dir)));
    assert!(tree.contains(&registry.display().to_string()), "{tree}");

    ok(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .arg("build")
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", &target),
    );

    // The host accepts the built plugin (API version and layout checks, strict modes).
    let plugins = work.path().join("plugins.d");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(
        target.join("debug/libtapio_plugin_dircount.so"),
        plugins.join("dircount.so"),
    )
    .unwrap();
    let out = ok(Command::new(host_bin())
        .args(["plugins", "list", "--plugins-dir"])
        .arg(&plugins));
    let listing = text(&out);
    assert!(
        listing
            .lines()
            .any(|l| l.contains("dircount") && l.trim_end().ends_with("loaded")),
        "{listing}"
    );
    let inspect = text(&ok(Command::new(host_bin())
        .args(["plugins", "inspect"])
        .arg(plugins.join("dircount.so"))));
    assert!(inspect.contains("dircount.sample"), "{inspect}");
    assert!(inspect.contains("required"), "path is required:\n{inspect}");
}
