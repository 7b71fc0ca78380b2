//! Generates the etcd v3 gRPC client (KV and Watch) from the vendored protos in `proto/etcd/`
//! with the pure-Rust protobuf compiler (protox), as the API crate does: no system `protoc`, and
//! the workspace's one tonic.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("proto");
    let files = [
        root.join("etcd/mvccpb/kv.proto"),
        root.join("etcd/etcdserverpb/rpc.proto"),
    ];
    println!("cargo:rerun-if-changed=proto");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        // Values as `Bytes`: a put sends the store's encoded object without a copy, and a
        // watch event's or a range's value is a slice of the received buffer.
        .bytes(".etcdserverpb.PutRequest.value")
        .bytes(".mvccpb.KeyValue.value")
        .compile_fds(fds)?;
    Ok(())
}
