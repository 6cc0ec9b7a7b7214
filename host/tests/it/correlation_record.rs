//! Recording live runs as correlation fixtures. With `TAPIO_RECORD_FIXTURES=1`, a live test
//! saves the events of its own workload from the `jsonl` sink output of the real binary as
//! `host/tests/fixtures/correlation/recorded/<name>.jsonl`, with everything correlation
//! added removed (its `tapio.*` attributes, event ids, trace context, its group and
//! prediction events), so the scenario tests (`correlation.rs`) replay real kernel events
//! with an injected clock. Enrichment attributes (`k8s.*`, `process.executable.name`, an
//! envelope `container_id` resolved by the entity graph) stay: the replay's enrichment only
//! adds what an event lacks.

use std::path::PathBuf;

use serde_json::Value;

/// Whether this run records fixtures.
pub(crate) fn recording() -> bool {
    std::env::var("TAPIO_RECORD_FIXTURES").is_ok_and(|v| v == "1")
}

/// The event as its plugin emitted it (`None` for correlation's own events).
pub(crate) fn raw(e: &Value) -> Option<Value> {
    let ty = e["type"].as_str()?;
    if ty.starts_with("tapio.correlation.") {
        return None;
    }
    let mut e = e.clone();
    let obj = e.as_object_mut()?;
    obj.remove("id");
    // Trace context came from the pipeline, except on application spans (their own).
    if !ty.starts_with("otel.") {
        for k in ["trace_id", "span_id", "parent_span_id"] {
            obj.remove(k);
        }
    }
    if let Some(attrs) = obj.get_mut("attributes").and_then(Value::as_object_mut) {
        attrs.retain(|k, _| !k.starts_with("tapio."));
    }
    Some(e)
}

/// Saves the events `ours` selects, plus at most `others` unrelated events of the same
/// sources (they must stay out of the groups), in delivery order. Returns the path.
pub(crate) fn save(
    name: &str,
    test: &str,
    events: &[Value],
    ours: impl Fn(&Value) -> bool,
    others: usize,
) -> PathBuf {
    let mine: Vec<&Value> = events.iter().filter(|e| ours(e)).collect();
    let sources: Vec<&str> = mine.iter().filter_map(|e| e["source"].as_str()).collect();
    let mut extra = 0;
    let mut lines = Vec::new();
    for e in events {
        let keep = if ours(e) {
            true
        } else if extra < others && e["source"].as_str().is_some_and(|s| sources.contains(&s)) {
            extra += 1;
            true
        } else {
            false
        };
        if keep {
            if let Some(r) = raw(e) {
                lines.push(r.to_string());
            }
        }
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/correlation/recorded");
    std::fs::create_dir_all(&dir).expect("create the recorded fixtures directory");
    let path = dir.join(format!("{name}.jsonl"));
    let mut text = format!(
        "# {name}.jsonl: recorded by {test} (TAPIO_RECORD_FIXTURES=1) on kernel {}: the jsonl sink output of a live run, the test's workload and {extra} unrelated events of the same plugins; correlation output removed\n",
        kernel.trim()
    );
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write the recorded fixture");
    eprintln!("recorded {}", path.display());
    path
}
