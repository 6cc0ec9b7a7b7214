//! Generates the CRI (runtime.v1) client from the upstream `api.proto` with `protox` (pure
//! Rust, no system `protoc`) and `tonic-prost-build`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/runtime/v1/api.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        // The server side serves the in-test fake runtime of the event-stream tests; every
        // RPC it does not implement answers Unimplemented.
        .build_server(true)
        .generate_default_stubs(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
