//! Compiles `proto/*.proto` into Rust with prost. The .proto files are parsed by protox (pure Rust),
//! so building lrpc needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/onnx.proto", "proto/explainer.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    // Tensor payloads decode as slices of the file buffer (no copy): a VGG16 is 0.5 GB of them.
    prost_build::Config::new()
        .bytes([".onnx.TensorProto.raw_data"])
        .compile_fds(descriptors)?;
    Ok(())
}
