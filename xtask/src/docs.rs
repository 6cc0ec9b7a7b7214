//! `cargo xtask docs [--check]`: regenerates the generated sections of
//! `docs/operations.md` (the config reference and the metrics reference) from
//! `tapio-collector docs config` (over every installable plugin) and `docs metrics`, or with
//! `--check` fails when the committed text differs.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The operator guide, relative to the workspace root.
pub const GUIDE: &str = "docs/operations.md";

/// Replaces the text between `<!-- BEGIN GENERATED: {name} -->` and
/// `<!-- END GENERATED: {name} -->` with `body`.
pub fn splice(doc: &str, name: &str, body: &str) -> Result<String> {
    let begin = format!("<!-- BEGIN GENERATED: {name} -->\n");
    let end = format!("<!-- END GENERATED: {name} -->");
    let start = doc
        .find(&begin)
        .with_context(|| format!("{GUIDE} lacks the marker {begin:?}"))?
        + begin.len();
    let stop = doc[start..]
        .find(&end)
        .with_context(|| format!("{GUIDE} lacks the marker {end:?}"))?
        + start;
    Ok(format!(
        "{}{}\n{}",
        &doc[..start],
        body.trim_end(),
        &doc[stop..]
    ))
}

/// Runs the freshly built binary's `docs` subcommand.
pub fn generate(binary: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(binary)
        .arg("docs")
        .args(args)
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "{} docs {} failed: {}",
            binary.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Writes the regenerated guide, or compares it with the committed one.
pub fn update(root: &Path, binary: &Path, plugins: &Path, check: bool) -> Result<()> {
    let path = root.join(GUIDE);
    let committed =
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {GUIDE}"))?;
    let plugins = plugins.display().to_string();
    let config = generate(binary, &["config", "--plugins-dir", &plugins])?;
    let metrics = generate(binary, &["metrics"])?;
    let fresh = splice(&splice(&committed, "config", &config)?, "metrics", &metrics)?;
    if fresh == committed {
        eprintln!("{GUIDE} is up to date");
        return Ok(());
    }
    if check {
        let first = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
        bail!(
            "{GUIDE} differs from what the code generates (first difference at line {}): run `cargo xtask docs` and commit the result",
            first + 1
        );
    }
    std::fs::write(&path, fresh)?;
    eprintln!("updated {GUIDE}");
    Ok(())
}
