//! Seeded random edits of YAML files, for tests that feed malformed config and rule files
//! to their loaders (no panic, every problem located).

/// `text` with one to three random edits: a line deleted, repeated, moved, re-indented or
/// replaced by garbage, or a value replaced by a bad one.
pub(crate) fn edited(rng: &mut fastrand::Rng, text: &str) -> String {
    const VALUES: &[&str] = &[
        "",
        "-1",
        "x",
        "1e99",
        "[]",
        "{}",
        "\"\"",
        "999999999999999999999",
        "10q",
        "a -> b",
        "null",
        "[a, a]",
        "0",
        "-0.5",
        "1.5",
        "nope -> pressure",
        "\"k8s.*.x\"",
        "~",
    ];
    const GARBAGE: &[&str] = &["  ? :", "\t", "%", "- - -", "rules:", "  - id:", "::", "]"];
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..rng.usize(1..=3) {
        let at = rng.usize(..lines.len());
        match rng.u8(..6) {
            0 if lines.len() > 1 => {
                lines.remove(at);
            }
            1 => {
                let copy = lines[at].clone();
                lines.insert(at, copy);
            }
            2 => {
                let other = rng.usize(..lines.len());
                lines.swap(at, other);
            }
            3 => {
                let l = &mut lines[at];
                if rng.bool() {
                    l.insert_str(0, "  ");
                } else if l.starts_with("  ") {
                    l.replace_range(..2, "");
                }
            }
            4 => lines[at] = GARBAGE[rng.usize(..GARBAGE.len())].to_owned(),
            _ => {
                let l = &mut lines[at];
                if let Some(colon) = l.find(": ") {
                    l.truncate(colon + 2);
                    l.push_str(VALUES[rng.usize(..VALUES.len())]);
                }
            }
        }
    }
    lines.join("\n")
}
