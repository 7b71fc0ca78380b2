//! Generates the API crate from `proto/` with a pure-Rust protobuf compiler (protox), so a fresh
//! machine needs no system `protoc`:
//! - prost messages and tonic clients/servers (`coxswain.v1.rs`),
//! - serde impls following the proto3 JSON mapping (pbjson) for the object kinds, which is how
//!   manifests (YAML/JSON) become typed objects,
//! - the encoded descriptor set, served by gRPC reflection.
use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from("proto");
    let mut files: Vec<PathBuf> = std::fs::read_dir(proto_dir.join("coxswain/v1"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed=proto");
    // The compiler's version for `version` (goVersion's place); a new toolchain rebuilds anyway.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=COXSWAIN_RUSTC_VERSION={rustc_version}");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let fds = protox::compile(&files, [&proto_dir])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_bytes = fds.encode_to_vec();
    std::fs::write(out_dir.join("coxswain_descriptor.bin"), &descriptor_bytes)?;

    // Messages of files that define services are RPC envelopes (they carry google.protobuf.Any);
    // they need no serde. IntOrString has a hand-written serde impl (bare int or string).
    let mut no_serde: Vec<String> = vec![".coxswain.v1.IntOrString".to_string()];
    for file in &fds.file {
        if !file.service.is_empty() {
            for m in &file.message_type {
                no_serde.push(format!(".{}.{}", file.package(), m.name()));
            }
        }
    }

    // A container's probes and lifecycle hooks are boxed: most containers set none of them,
    // and inline they were three quarters of a Container's size (1,744 bytes), which every
    // cached pod and every node agent's running container holds (sim pods' memory, issue 17).
    let mut config = tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .btree_map(".");
    for field in [
        "liveness_probe",
        "readiness_probe",
        "startup_probe",
        "lifecycle",
    ] {
        config = config.boxed(format!(".coxswain.v1.Container.{field}"));
    }
    config.compile_fds(fds)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .btree_map(["."])
        .exclude(no_serde)
        .build(&[".coxswain.v1"])?;
    Ok(())
}
