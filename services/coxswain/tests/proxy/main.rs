//! The service proxy end to end on the real binary: `coxswain up` (proxy in-process) and
//! `coxswain proxy` against a remote store. Real HTTP GETs to ClusterIPs, NodePorts and
//! LoadBalancer IPs; nginx pods of the process runtime, and, for the routing rules, selectorless
//! Services whose hand-made Endpoints point at small HTTP/UDP servers of this test process (each
//! answers its own name, so every request shows which endpoint served it).

mod common;
mod load_balancer;
mod nginx;
mod processes;
mod routing;
mod traffic_policy;
