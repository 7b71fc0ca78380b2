//! The coxswain API crate: the types generated from `proto/` (one schema for every service),
//! the kinds registry, and the API machinery every component shares — manifests in, defaults,
//! validation with field paths, quantities, label and field selectors.
#![allow(clippy::large_enum_variant)]

pub mod v1 {
    //! Generated from `proto/coxswain/v1`: messages, serde (Kubernetes JSON), clients, servers.
    #![allow(clippy::all, missing_docs, rustdoc::all)]
    include!(concat!(env!("OUT_DIR"), "/coxswain.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/coxswain.v1.serde.rs"));
}

pub mod defaults;
pub mod duration;
pub mod error;
pub mod gojson;
pub mod hpa_convert;
pub mod intstr;
pub mod kinds;
pub mod manifest;
pub mod qos;
pub mod quantity;
pub mod selector;
pub mod time;
pub mod tz;
pub mod validation;
pub mod version;
pub mod yaml;

pub use error::Error;
pub use kinds::{Kind, Object, Resource};

/// The encoded `FileDescriptorSet` of every proto file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/coxswain_descriptor.bin"));
