//! gRPC server reflection, the same on every server this binary runs.
//!
//! Both protocols (v1 and v1alpha) are served. Besides coxswain's own API and grpc.health.v1,
//! it carries google.rpc's error details (ErrorInfo, BadRequest, ...): every error status
//! carries an ErrorInfo in its details, and grpcurl resolves a detail's type URL
//! (`type.googleapis.com/google.rpc.ErrorInfo`) through reflection to print it. Without those
//! descriptors grpcurl cannot decode the details.

use tonic_reflection::server::{v1, v1alpha, Builder, Error};

fn builder() -> Builder<'static> {
    Builder::configure()
        .register_encoded_file_descriptor_set(coxswain_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// grpc.reflection.v1.
pub fn v1() -> Result<v1::ServerReflectionServer<impl v1::ServerReflection>, Error> {
    builder().build_v1()
}

/// grpc.reflection.v1alpha, for clients that ask only for it (older grpcurl releases).
pub fn v1alpha() -> Result<v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>, Error> {
    builder().build_v1alpha()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_descriptor_set_registers() {
        super::v1().expect("v1 reflection");
        super::v1alpha().expect("v1alpha reflection");
    }
}
