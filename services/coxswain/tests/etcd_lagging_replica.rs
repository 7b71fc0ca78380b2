//! An informer relisting through a store replica that trails etcd does not go back in time
//! (issue 18): client-go's reflector relists "not older than" its last synced resourceVersion,
//! and, on "Too large resource version", with none — a consistent read, which the store serves
//! only once its cache has reached etcd's current revision.
//!
//! The lag is made deterministic by a TCP relay between replica b and etcd that, once b is
//! up, holds every byte from etcd for [`LAG`]: b's watch, and so its cache, trails etcd by at
//! least that. The informer reaches the replicas through a second relay whose target the test
//! switches from a to b, so which replica serves each request is the test's choice, not the
//! balancer's.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::ConfigMap;
use coxswain_client::{Client, Event, Informer, ListParams, Resource};
use coxswain_test_support::etcd::Etcd;
use coxswain_test_support::{configmap, wait_for, Coxswain};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long replica b's relay holds etcd's bytes.
const LAG: Duration = Duration::from_secs(6);
/// Replica b's wait for a resourceVersion it has not reached (its flag), well under LAG, so
/// both the watch's and the NotOlderThan list's "Too large" happen while b still trails.
const TOO_LARGE_WAIT: &str = "1s";
const OBJECTS: usize = 20;

/// A TCP relay to a switchable target; bytes coming back from the target are held for
/// `hold` (milliseconds, switchable too: a chunk read after a switch is held the new time,
/// and chunks stay in order), on every connection or only on the `only`-th accepted (1-based).
struct Relay {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    hold: Arc<AtomicU64>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        Self::start_holding(target, None).await
    }

    async fn start_holding(target: SocketAddr, only: Option<usize>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let target = Arc::new(Mutex::new(target));
        let hold = Arc::new(AtomicU64::new(0));
        let (t, h) = (target.clone(), hold.clone());
        tokio::spawn(async move {
            let mut accepted = 0;
            while let Ok((inbound, _)) = listener.accept().await {
                accepted += 1;
                let to = *t.lock().unwrap();
                let hold = match only {
                    Some(n) if n != accepted => Arc::new(AtomicU64::new(0)),
                    _ => h.clone(),
                };
                tokio::spawn(relay(inbound, to, hold));
            }
        });
        Relay { addr, target, hold }
    }

    fn switch(&self, to: SocketAddr) {
        *self.target.lock().unwrap() = to;
    }

    fn hold(&self, d: Duration) {
        self.hold.store(d.as_millis() as u64, Ordering::SeqCst);
    }
}

async fn relay(inbound: TcpStream, to: SocketAddr, hold: Arc<AtomicU64>) {
    let Ok(outbound) = TcpStream::connect(to).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (mut in_r, mut in_w) = inbound.into_split();
    let (mut out_r, mut out_w) = outbound.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut in_r, &mut out_w).await;
        let _ = out_w.shutdown().await;
    });
    // Back from the target: each chunk is written `hold` after it was read, in order.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match out_r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let due = tokio::time::Instant::now()
                        + Duration::from_millis(hold.load(Ordering::SeqCst));
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    while let Some((due, bytes)) = rx.recv().await {
        tokio::time::sleep_until(due).await;
        if in_w.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = in_w.shutdown().await;
}

fn socket(url: &str) -> SocketAddr {
    let hostport = url.rsplit("://").next().unwrap_or(url);
    hostport.parse().expect("host:port")
}

fn ours(items: &[ConfigMap]) -> usize {
    items
        .iter()
        .filter(|c| c.metadata().name.starts_with("lag-"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_informer_relisting_through_a_lagging_replica_does_not_go_back_in_time() {
    let etcd = Etcd::start().expect("start etcd");
    let mut a = Coxswain::start_with(&["store"], &["--etcd-servers", &etcd.url]).expect("store a");
    let etcd_relay = Relay::start(socket(&etcd.url)).await;
    let lagging_etcd = format!("http://{}", etcd_relay.addr);
    let b = tokio::task::spawn_blocking(move || {
        Coxswain::start_with(
            &["store"],
            &[
                "--etcd-servers",
                &lagging_etcd,
                "--too-large-resource-version-wait",
                TOO_LARGE_WAIT,
            ],
        )
    })
    .await
    .expect("start b")
    .expect("store b");

    // The informer reaches a, through a relay the test will point at b.
    // b is up and current; from now on it trails etcd by LAG.
    etcd_relay.hold(LAG);
    let to_store = Relay::start(socket(&a.url())).await;
    let scheme = a.url().split("://").next().unwrap_or("https").to_string();
    let informer_client = Client::connect(&format!("{scheme}://{}", to_store.addr))
        .await
        .expect("client through the relay");
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let synced_rvs: Arc<Mutex<Vec<i64>>> = Arc::default();
    let slot: Arc<Mutex<Option<coxswain_client::Cache<ConfigMap>>>> = Arc::default();
    let (ev, rvs, s) = (events.clone(), synced_rvs.clone(), slot.clone());
    let cache = Informer::<ConfigMap>::new(informer_client)
        .namespace("default")
        .on_event(move |e: &Event<ConfigMap>| match e {
            Event::Deleted(c) => ev.lock().unwrap().push(format!("-{}", c.metadata().name)),
            Event::Synced => {
                if let Some(c) = s.lock().unwrap().as_ref() {
                    rvs.lock()
                        .unwrap()
                        .push(c.resource_version().parse().unwrap_or(0));
                }
            }
            _ => {}
        })
        .start();
    *slot.lock().unwrap() = Some(cache.clone());
    cache.wait_synced().await;

    // Writes through a, which the informer's watch on a delivers at once.
    let writer = Client::connect(&a.url()).await.expect("client of a");
    for i in 0..OBJECTS {
        writer
            .create(&configmap(&format!("lag-{i}")))
            .await
            .expect("create");
    }
    wait_for(
        "the informer to see the writes",
        Duration::from_secs(10),
        || {
            let n = ours(
                &cache
                    .list()
                    .iter()
                    .map(|c| (**c).clone())
                    .collect::<Vec<_>>(),
            );
            async move { (n == OBJECTS).then_some(()) }
        },
    )
    .await
    .expect("informer synced through a");
    let seen: i64 = cache.resource_version().parse().expect("rv");

    // b trails: its cache as it is lacks the writes, and a list not older than what the
    // informer saw is "Too large resource version" once b's wait is over.
    let direct_b = Client::connect(&b.url()).await.expect("client of b");
    let (stale, stale_rv) = direct_b
        .list_at::<ConfigMap>("default", &ListParams::default(), "0")
        .await
        .expect("any list through b");
    assert!(
        ours(&stale) < OBJECTS && stale_rv.parse::<i64>().unwrap_or(0) < seen,
        "replica b was expected to trail etcd by {LAG:?} (b at {stale_rv}, {} of ours; the informer at {seen})",
        ours(&stale)
    );
    let e = direct_b
        .list_at::<ConfigMap>("default", &ListParams::default(), &seen.to_string())
        .await
        .expect_err("b has not reached what the informer saw");
    assert!(e.is_too_large_resource_version(), "{e}");

    // From now on the informer reaches b only: its watch breaks with a, and it watches and
    // relists through b.
    to_store.switch(socket(&b.url()));
    a.kill9();
    wait_for("a relist through b", Duration::from_secs(60), || {
        let n = synced_rvs.lock().unwrap().len();
        async move { (n >= 2).then_some(()) }
    })
    .await
    .expect("relisted");

    let rvs = synced_rvs.lock().unwrap().clone();
    assert!(
        rvs.windows(2).all(|w| w[0] <= w[1]) && *rvs.last().unwrap() >= seen,
        "a relist moved the cache back: synced at {rvs:?}, the informer had seen {seen}"
    );
    let deleted = events.lock().unwrap().clone();
    assert!(
        deleted.is_empty(),
        "the relist through b deleted what the informer had seen: {deleted:?}"
    );
    assert_eq!(
        ours(
            &cache
                .list()
                .iter()
                .map(|c| (**c).clone())
                .collect::<Vec<_>>()
        ),
        OBJECTS
    );
    // The relist that landed was a consistent read at b: its cache first caught up with
    // etcd's revision (that read is held as long as the watch, so b does not fall back to
    // reading etcd here; the store's unit tests and conformance cover the fallback).
    let metrics = scrape(&b.metrics).await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("apiserver_watch_cache_consistent_read_total{")
                && l.contains("resource=\"configmaps\"")
                && l.contains("success=\"true\"")
        ),
        "no consistent list at b:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("consistent_read"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    cache.stop();
}

/// The Prometheus text a store serves at `addr`/metrics.
async fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect to metrics");
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("response");
    body
}

/// A store whose watch on etcd is stuck while etcd answers its reads (only its watch's
/// connection is held: its second to etcd, after the KV client it reads and writes with):
/// a list with no resourceVersion is read from etcd itself, as kube-apiserver falls back from
/// its watch cache, and holds what was written through the other store; "0" is the stale
/// cache, a resourceVersion it has not reached is "Too large".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consistent_list_through_a_replica_whose_watch_is_stuck_is_read_from_etcd() {
    let etcd = Etcd::start().expect("start etcd");
    let a = Coxswain::start_with(&["store"], &["--etcd-servers", &etcd.url]).expect("store a");
    let etcd_relay = Relay::start_holding(socket(&etcd.url), Some(2)).await;
    let via_relay = format!("http://{}", etcd_relay.addr);
    let b = tokio::task::spawn_blocking(move || {
        Coxswain::start_with(
            &["store"],
            &[
                "--etcd-servers",
                &via_relay,
                "--too-large-resource-version-wait",
                TOO_LARGE_WAIT,
            ],
        )
    })
    .await
    .expect("start b")
    .expect("store b");
    etcd_relay.hold(Duration::from_secs(60));

    let writer = Client::connect(&a.url()).await.expect("client of a");
    let mut last = 0;
    for i in 0..5 {
        let c = writer
            .create(&configmap(&format!("stuck-{i}")))
            .await
            .expect("create");
        last = c.metadata().resource_version.parse().expect("rv");
    }
    let stuck = |items: &[ConfigMap]| {
        items
            .iter()
            .filter(|c| c.metadata().name.starts_with("stuck-"))
            .count()
    };
    let reader = Client::connect(&b.url()).await.expect("client of b");
    let (cached, _) = reader
        .list_at::<ConfigMap>("default", &ListParams::default(), "0")
        .await
        .expect("any list through b");
    assert_eq!(stuck(&cached), 0, "b's watch was expected to be held");
    let e = reader
        .list_at::<ConfigMap>("default", &ListParams::default(), &last.to_string())
        .await
        .expect_err("b has not reached it");
    assert!(e.is_too_large_resource_version(), "{e}");

    let start = std::time::Instant::now();
    let (items, rv) = reader
        .list::<ConfigMap>("default", &ListParams::default())
        .await
        .expect("consistent list through b");
    assert_eq!(stuck(&items), 5);
    assert!(rv.parse::<i64>().expect("rv") >= last, "{rv} < {last}");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "it waited for b's cache first"
    );
    let metrics = scrape(&b.metrics).await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("apiserver_watch_cache_consistent_read_total{")
                && l.contains("resource=\"configmaps\"")
                && l.contains("fallback=\"true\"")
                && l.contains("success=\"true\"")
        ),
        "no consistent list fell back to etcd:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("consistent_read"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
