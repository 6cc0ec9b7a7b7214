//! Compiles the export protocol (`proto/tapio/v1/*.proto`) with `protox` (pure Rust, no
//! system `protoc`) and generates the tonic client and server with `tonic-prost-build`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/tapio/v1/event.proto",
        "proto/tapio/v1/collector.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
