//! Runs `otlp_client.py` with the venv's Python.

use std::path::PathBuf;
use std::process::Command;

/// The venv's python.
pub fn interpreter() -> PathBuf {
    let cache = std::env::var_os("TAPIO_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/tapio")
        });
    cache.join("venv/bin/python")
}

/// Why the SDK cannot be used, if it cannot.
pub fn missing() -> Option<String> {
    let python = interpreter();
    if !python.exists() {
        return Some(format!("{} does not exist", python.display()));
    }
    let ok = Command::new(&python)
        .args([
            "-c",
            "import opentelemetry.sdk, grpc, opentelemetry.exporter.otlp.proto.grpc.trace_exporter, opentelemetry.exporter.otlp.proto.http.trace_exporter",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    (!ok).then(|| "the OpenTelemetry SDK and exporters are not importable".to_owned())
}

/// Runs the client script with `args`; returns its JSON output.
pub fn run(args: &[&str]) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/otlp_client.py");
    let out = Command::new(interpreter())
        .arg(&script)
        .args(args)
        .output()
        .expect("cannot run python");
    assert!(
        out.status.success(),
        "otlp_client.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON from otlp_client.py: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
