//! Integration tests of the OTLP receiver with real senders: the OpenTelemetry Python SDK's
//! OTLP exporters (gRPC and HTTP/protobuf) and grpcio with the opentelemetry-proto
//! messages, from a venv under `${TAPIO_CACHE:-$HOME/.cache/tapio}/venv`
//! (`.ci/deps/platform-net.sh`); raw HTTP requests with ureq.

mod capture;
mod errors;
mod python;
mod sdk;

/// Whether a test that needs the Python SDK can run. When it cannot, prints
/// `skipping <test>: <why>, needs <what>` and returns false, or panics when
/// `TAPIO_REQUIRE_ALL_TESTS=1` (CI) so that nothing is skipped silently.
fn can_run(test: &str) -> bool {
    match python::missing() {
        None => true,
        Some(why) => {
            let message = format!(
                "skipping {test}: {why}, needs the OpenTelemetry Python SDK venv (.ci/deps/platform-net.sh)"
            );
            if std::env::var("TAPIO_REQUIRE_ALL_TESTS").as_deref() == Ok("1") {
                panic!("{message} (TAPIO_REQUIRE_ALL_TESTS=1 forbids skipping)");
            }
            eprintln!("{message}");
            false
        }
    }
}
