//! The store conformance suite: Kubernetes API semantics, run against every backend
//! (in-memory, the durable redb file, and etcd: a real etcd per test, started on free loopback
//! ports by `coxswain_test_support::etcd`). A new backend adds one module to `backends!`.

macro_rules! backends {
    ($($test:ident $(($history:expr))?),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() { super::$test(open(false, backends!(@h $($history)?)).await).await }
            )*
        }
        mod redb {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() { super::$test(open(true, backends!(@h $($history)?)).await).await }
            )*
        }
        mod etcd {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() { super::$test(open_etcd(backends!(@h $($history)?)).await).await }
            )*
        }
    };
    (@h $h:expr) => { $h };
    (@h) => { 10_000 };
}

mod backend;
mod common;
mod deletion;
mod objects;
mod paging;
mod watch;
