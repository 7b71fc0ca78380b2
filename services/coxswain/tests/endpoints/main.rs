//! Endpoints, EndpointSlices and `coxctl expose` end to end on the real binary: S30 (readiness
//! probes move pods between `addresses` and `notReadyAddresses`, with real nginx-like pods), a
//! sim pod turning ready, named targetPorts resolved per pod, the headless StatefulSet of
//! S50–S52 (hostnames), slices split at a small `--max-endpoints-per-slice`, the expose half of
//! S49, and bad Service/EndpointSlice input rejected with the field named and nothing stored.

mod addresses;
mod common;
mod expose;
mod slices;
mod validation;
