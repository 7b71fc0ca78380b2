//! Several store replicas behind one client: `--server https://a:50051,https://b:50051`.
//!
//! The servers go into one tonic balanced channel (requests spread over them). A prober task
//! connects to each server every [`PROBE_PERIOD`]; a server that refuses or does not answer
//! leaves the balancer, and comes back once it accepts again, so after a replica dies the
//! requests that follow (a retried write, an informer's re-watch from its last
//! resourceVersion) go to the live ones. The last server in the balancer is never taken out:
//! with every replica down, requests fail at once with UNAVAILABLE instead of waiting.
use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};

/// How often each server is probed.
pub const PROBE_PERIOD: Duration = Duration::from_millis(500);
/// How long a probe's connect may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The servers of a comma-separated `--server` list (None for a single server).
pub fn split(urls: &str) -> Option<Vec<&str>> {
    urls.contains(',').then(|| {
        urls.split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect()
    })
}

/// One balanced channel over `urls`, each made into an endpoint by `endpoint`.
pub fn balanced(urls: &[&str], endpoint: impl Fn(&str) -> Result<Endpoint>) -> Result<Channel> {
    if urls.is_empty() {
        return Err(Error::Invalid("server URL: empty list".into()));
    }
    let mut servers = Vec::with_capacity(urls.len());
    for u in urls {
        let ep = endpoint(u)?;
        let uri = ep.uri();
        let host = uri
            .host()
            .ok_or_else(|| Error::Invalid(format!("server URL {u}: no host")))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        servers.push((format!("{host}:{port}"), ep));
    }
    let (channel, tx) = Channel::balance_channel::<usize>(servers.len() * 4 + 4);
    for (i, (_, ep)) in servers.iter().enumerate() {
        tx.try_send(Change::Insert(i, ep.clone()))
            .map_err(|e| Error::Invalid(format!("server list: {e}")))?;
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(probe(servers, tx));
    }
    Ok(channel)
}

async fn reachable(addr: &str) -> bool {
    let Ok(addrs) = tokio::net::lookup_host(addr).await else {
        return false;
    };
    let addrs: Vec<SocketAddr> = addrs.collect();
    for a in addrs {
        if let Ok(Ok(_)) =
            tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(a)).await
        {
            return true;
        }
    }
    false
}

async fn probe(
    servers: Vec<(String, Endpoint)>,
    tx: tokio::sync::mpsc::Sender<Change<usize, Endpoint>>,
) {
    let mut live = vec![true; servers.len()];
    let mut tick = tokio::time::interval(PROBE_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return;
        }
        for (i, (addr, ep)) in servers.iter().enumerate() {
            let up = reachable(addr).await;
            let change = if up && !live[i] {
                tracing::info!(server = %addr, "store replica reachable again");
                Change::Insert(i, ep.clone())
            } else if !up && live[i] && live.iter().filter(|l| **l).count() > 1 {
                tracing::warn!(server = %addr, "store replica unreachable: failing over");
                Change::Remove(i)
            } else {
                continue;
            };
            if tx.send(change).await.is_err() {
                return;
            }
            live[i] = up;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_split_and_single_servers_are_not() {
        assert_eq!(split("http://a:1"), None);
        assert_eq!(
            split("http://a:1, http://b:2,"),
            Some(vec!["http://a:1", "http://b:2"])
        );
    }

    /// Two servers, one of them down: every request ends on the live one once the prober has
    /// taken the dead one out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_fail_over_to_the_live_server() {
        // A port nothing listens on, and a store.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let dead_url = format!("http://{}", dead.local_addr().expect("addr"));
        drop(dead);
        let store = coxswain_test_support::Coxswain::start_with(&["store"], &["--auth=false"])
            .expect("store");
        let urls = [dead_url.as_str(), &store.url()];
        let ch = balanced(&urls, |u| {
            Endpoint::from_shared(u.to_string()).map_err(|e| Error::Invalid(e.to_string()))
        })
        .expect("channel");
        let client = crate::Client::from_channel(ch);
        // Once the prober has taken the dead server out, 20 requests in a row succeed.
        coxswain_test_support::wait_for(
            "20 requests in a row answered",
            Duration::from_secs(20),
            || {
                let client = client.clone();
                async move {
                    for _ in 0..20 {
                        let ns: coxswain_api::v1::Namespace =
                            client.get("", "default").await.ok()??;
                        ns.metadata?;
                    }
                    Some(())
                }
            },
        )
        .await
        .expect("served by the live replica");
    }
}
