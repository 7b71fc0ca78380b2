//! coxswain's service proxy (kube-proxy's job on one machine, without root): every Service port
//! with ready endpoints is listened on at its ClusterIP, its NodePort on every node's InternalIP
//! (and `--nodeport-addresses`) and its LoadBalancer ingress IPs; connections are spliced to a
//! ready endpoint chosen round-robin (ClientIP affinity, traffic policies), UDP is carried over
//! per-client sessions.
//!
//! - [`routing`]: the balancer and the traffic-policy rules (pure).
//! - [`table`]: a Service, its EndpointSlices and the Nodes → listeners and balancers;
//!   LoadBalancer IPs (pure).
//! - [`forward`]: the TCP and UDP data path.
//! - [`http`]: counting HTTP/1 requests in a client stream (the per-Service request counter).
//! - [`sync`]: informers and the incremental loop applying the table per changed Service.
pub mod forward;
pub mod http;
pub mod routing;
pub mod sync;
pub mod table;

pub use forward::ForwardConfig;
pub use sync::{run, Config, Observer, Proxy};
pub use table::Pool;
