//! What a SIGHUP applies and what it cannot: plugin sections (`collectors:`, and the plugin
//! policy of `plugins:` but its directories) and the correlation rules take effect at once;
//! everything else (the ring, the pipeline, sinks, exporters, the metrics endpoint) is built
//! at start, so a change there is reported with the setting's name and needs a restart.

use serde::Serialize;
use serde_json::Value;

use crate::config::HostConfig;

/// The dotted names of settings that differ between `running` and `new` and that only a
/// restart applies, in a stable order.
pub fn needs_restart(running: &HostConfig, new: &HostConfig) -> Vec<String> {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) = (json(running), json(new)) else {
        return Vec::new();
    };
    let mut changed = Vec::new();
    for (section, old) in &a {
        let Some(new) = b.get(section) else { continue };
        match section.as_str() {
            "collectors" => {}
            // Live: the plugin policy. Fixed at start: where plugins come from.
            "plugins" => diff_fields(section, old, new, |f| f.ends_with("dir"), &mut changed),
            // Live: the rules (built-ins and rules_dir). Fixed: the stage's settings.
            "correlation" => diff_fields(
                section,
                old,
                new,
                |f| f != "builtin_rules" && f != "rules_dir",
                &mut changed,
            ),
            _ => diff_fields(section, old, new, |_| true, &mut changed),
        }
    }
    changed.sort();
    changed
}

fn json(c: &HostConfig) -> serde_json::Result<Value> {
    c.serialize(serde_json::value::Serializer)
}

/// Adds `section.field` for each differing field that `fixed` says needs a restart (or
/// `section` itself when it is not a map).
fn diff_fields(
    section: &str,
    old: &Value,
    new: &Value,
    fixed: impl Fn(&str) -> bool,
    out: &mut Vec<String>,
) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (field, value) in a {
                if fixed(field) && b.get(field) != Some(value) {
                    out.push(format!("{section}.{field}"));
                }
            }
        }
        _ if old != new => out.push(section.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_sections_are_not_reported_and_fixed_ones_are_named() {
        let running = HostConfig::default();
        let mut new = running.clone();
        new.collectors.insert(
            "example".into(),
            crate::config::CollectorSection {
                enabled: Some(false),
                config: None,
            },
        );
        new.correlation.builtin_rules = !new.correlation.builtin_rules;
        new.plugins.strict_modes = !new.plugins.strict_modes;
        assert!(
            needs_restart(&running, &new).is_empty(),
            "all of these apply live"
        );
        new.export.server = "tapio.example:9090".into();
        new.orchestrator.nats.enabled = true;
        new.plugins.dir = "/elsewhere".into();
        new.correlation.proc_fallback = !new.correlation.proc_fallback;
        assert_eq!(
            needs_restart(&running, &new),
            [
                "correlation.proc_fallback",
                "export.server",
                "orchestrator.nats",
                "plugins.dir"
            ]
        );
    }
}
