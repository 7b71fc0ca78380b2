//! What only the etcd backend has: Kubernetes' key layout in a real etcd (read back with
//! etcdctl), resourceVersion = mod_revision, the change feed surviving an etcd restart, two
//! stores on one etcd, periodic compaction, and TLS with client certificates. The shared API
//! semantics run in `conformance.rs` against every backend.
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1;
use coxswain_api::{Kind, Object};
use coxswain_store::backend::{EtcdBackend, EtcdOptions};
use coxswain_store::cache::EventType;
use coxswain_store::store::{WatchEvent, WatchOptions};
use coxswain_store::{Store, StoreConfig, StoreError};
use coxswain_test_support::etcd::Etcd;

async fn start_etcd() -> Etcd {
    tokio::task::spawn_blocking(Etcd::start)
        .await
        .expect("join")
        .expect("start etcd")
}

fn options(etcd: &Etcd, prefix: &str) -> EtcdOptions {
    EtcdOptions {
        servers: vec![etcd.url.clone()],
        prefix: prefix.into(),
        compaction_interval: Duration::ZERO,
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        ..Default::default()
    }
}

async fn store_on(opts: EtcdOptions) -> Store {
    let b = EtcdBackend::connect(opts).await.expect("connect to etcd");
    Store::open(Arc::new(b), StoreConfig::default())
        .await
        .expect("open store")
}

fn configmap(name: &str, data: &str) -> Object {
    Object::ConfigMap(v1::ConfigMap {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        data: [("k".to_string(), data.to_string())].into_iter().collect(),
        ..Default::default()
    })
}

fn rv(o: &Object) -> i64 {
    o.meta().resource_version.parse().expect("numeric")
}

/// The mod_revision etcd holds for `key`, read with etcdctl; None when absent.
fn etcd_mod_revision(etcd: &Etcd, key: &str) -> Option<i64> {
    let out = etcd.ctl(&["get", key, "-w", "json"]).expect("etcdctl get");
    let v: serde_json::Value = serde_json::from_str(&out).expect("etcdctl json");
    v["kvs"].as_array()?.first()?["mod_revision"].as_i64()
}

async fn next_change(
    rx: &mut tokio::sync::mpsc::Receiver<Result<WatchEvent, StoreError>>,
) -> (EventType, Object) {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a watch event within 20 s")
            .expect("watch open")
            .expect("watch event");
        if let WatchEvent::Change { typ, object } = ev {
            return (typ, object.decode());
        }
    }
}

/// Retry a write while etcd comes back (bounded).
async fn create_retrying(s: &Store, o: Object) -> Object {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match s.create(o.clone(), false).await {
            Ok(o) => return o,
            Err(StoreError::Backend(e)) if tokio::time::Instant::now() < deadline => {
                eprintln!("retrying the create: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("create: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_follow_kubernetes_layout_and_resource_version_is_mod_revision() {
    let etcd = start_etcd().await;
    let s = store_on(options(&etcd, "/registry")).await;
    let c = s
        .create(configmap("web", "1"), false)
        .await
        .expect("create");
    assert_eq!(
        etcd_mod_revision(&etcd, "/registry/configmaps/default/web"),
        Some(rv(&c))
    );
    // Cluster-scoped: no namespace segment. The store made the system namespaces at start.
    assert!(etcd_mod_revision(&etcd, "/registry/namespaces/kube-system").is_some());
    let u = s
        .patch(
            Kind::ConfigMap,
            "default",
            "web",
            r#"{"data":{"k":"2"}}"#,
            false,
        )
        .await
        .expect("patch");
    assert!(rv(&u) > rv(&c));
    assert_eq!(
        etcd_mod_revision(&etcd, "/registry/configmaps/default/web"),
        Some(rv(&u))
    );
    // Another prefix on the same etcd: its own tree, nothing shared.
    let other = store_on(options(&etcd, "/cluster-b")).await;
    let o = other
        .create(configmap("web", "b"), false)
        .await
        .expect("create");
    assert_eq!(
        etcd_mod_revision(&etcd, "/cluster-b/configmaps/default/web"),
        Some(rv(&o))
    );
    assert_eq!(
        s.get(Kind::ConfigMap, "default", "web")
            .expect("get")
            .meta()
            .resource_version,
        u.meta().resource_version,
        "the /registry store does not see /cluster-b"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_resumes_from_etcd_history_after_etcd_restarts() {
    let mut etcd = start_etcd().await;
    let s = store_on(options(&etcd, "/registry")).await;
    let a = s.create(configmap("a", "1"), false).await.expect("create");
    let mut rx = s
        .watch(WatchOptions {
            kind: Some(Kind::ConfigMap),
            resource_version: Some(rv(&a)),
            ..Default::default()
        })
        .expect("watch");
    // A second store writes while the first one's etcd watch is broken and re-established.
    let etcd = tokio::task::spawn_blocking(move || {
        etcd.restart().expect("restart etcd");
        etcd
    })
    .await
    .expect("join");
    let writer = store_on(options(&etcd, "/registry")).await;
    let b = create_retrying(&writer, configmap("b", "1")).await;
    let c = create_retrying(&writer, configmap("c", "1")).await;
    assert!(rv(&a) < rv(&b) && rv(&b) < rv(&c));
    // The first store's feed resumed at the next revision: both, in order, once, no gap.
    for want in [&b, &c] {
        let (typ, o) = next_change(&mut rx).await;
        assert_eq!(
            (typ, o.name(), rv(&o)),
            (EventType::Added, want.name(), rv(want))
        );
    }
    // And it still writes.
    let d = create_retrying(&s, configmap("d", "1")).await;
    let (_, o) = next_change(&mut rx).await;
    assert_eq!((o.name(), rv(&o)), ("d", rv(&d)));
    drop(etcd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_etcd_share_data_watches_and_optimistic_concurrency() {
    let etcd = start_etcd().await;
    let a = store_on(options(&etcd, "/registry")).await;
    let b = store_on(options(&etcd, "/registry")).await;
    let mut watch_b = b
        .watch(WatchOptions {
            kind: Some(Kind::ConfigMap),
            resource_version: Some(b.revision()),
            ..Default::default()
        })
        .expect("watch");
    let mut written = Vec::new();
    for i in 0..5 {
        let via = if i % 2 == 0 { &a } else { &b };
        written.push(
            via.create(configmap(&format!("x{i}"), "0"), false)
                .await
                .expect("create"),
        );
    }
    // A watch on one replica sees writes through both, in revision order, no gaps.
    for want in &written {
        let (_, o) = next_change(&mut watch_b).await;
        assert_eq!((o.name(), rv(&o)), (want.name(), rv(want)));
    }
    // Two writers on one object through different replicas: one wins, one Conflict.
    let base = written[0].clone();
    let mut ua = base.clone();
    let mut ub = base.clone();
    if let Object::ConfigMap(c) = &mut ua {
        c.data.insert("k".into(), "from-a".into());
    }
    if let Object::ConfigMap(c) = &mut ub {
        c.data.insert("k".into(), "from-b".into());
    }
    let (ra, rb) = tokio::join!(a.update(ua), b.update(ub));
    let oks = [ra.is_ok(), rb.is_ok()];
    assert_eq!(oks.iter().filter(|x| **x).count(), 1, "{ra:?} {rb:?}");
    let err = if ra.is_ok() { rb.err() } else { ra.err() }.expect("one error");
    assert_eq!(err.code(), tonic::Code::Aborted, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_is_periodic_and_follows_kube_apiservers_compactor() {
    let etcd = start_etcd().await;
    let mut opts = options(&etcd, "/registry");
    opts.compaction_interval = Duration::from_millis(200);
    let s = store_on(opts).await;
    let first = s.create(configmap("c", "0"), false).await.expect("create");
    for i in 1..5 {
        s.patch(
            Kind::ConfigMap,
            "default",
            "c",
            &format!(r#"{{"data":{{"k":"{i}"}}}}"#),
            false,
        )
        .await
        .expect("patch");
    }
    // Round one records the revision, round two compacts to it: the first write's revision
    // is then gone from etcd's history.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let at = first.meta().resource_version.clone();
        match etcd.ctl(&["get", "/registry/configmaps/default/c", "--rev", &at]) {
            Err(e) if e.to_string().contains("compacted") => break,
            r => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no compaction within 20 s: {r:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Coordinated through compact_rev_key, as upstream (its version counts the rounds).
    let out = etcd
        .ctl(&["get", "compact_rev_key", "-w", "json"])
        .expect("get");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(v["kvs"][0]["version"].as_i64().unwrap_or(0) >= 2, "{out}");
    // The store works on after compactions.
    s.create(configmap("after", "0"), false)
        .await
        .expect("create after compaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_etcd_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let opts = EtcdOptions {
        servers: vec![format!("http://127.0.0.1:{port}")],
        dial_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    match EtcdBackend::connect(opts).await {
        Err(e) => assert!(e.to_string().contains("cannot reach etcd at"), "{e}"),
        Ok(_) => panic!("connected to nothing"),
    }
    let bad = EtcdOptions {
        prefix: "registry".into(),
        ..Default::default()
    };
    assert!(EtcdBackend::connect(bad).await.is_err());
}

/// A CA, a serving certificate for 127.0.0.1 and a client certificate, as PEM files.
fn tls_files(
    dir: &std::path::Path,
) -> (
    coxswain_test_support::etcd::Tls,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.distinguished_name
        .push(DnType::CommonName, "etcd-test-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |cn: &str, sans: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>| {
        let mut p = CertificateParams::new(sans).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = usages;
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    // etcd 3.4 also dials itself with its serving certificate: it needs both usages.
    let (server_pem, server_key) = leaf(
        "etcd",
        vec!["127.0.0.1".into(), "localhost".into()],
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    );
    let (client_pem, client_key) = leaf(
        "coxswain-store",
        Vec::new(),
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    );
    let write = |name: &str, pem: &str| {
        let p = dir.join(name);
        std::fs::write(&p, pem).expect("write pem");
        p
    };
    let tls = coxswain_test_support::etcd::Tls {
        ca: write("ca.crt", &ca_cert.pem()),
        cert: write("server.crt", &server_pem),
        key: write("server.key", &server_key),
    };
    (
        tls,
        write("client.crt", &client_pem),
        write("client.key", &client_key),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tls, client_cert, client_key) = tls_files(dir.path());
    let ca = tls.ca.clone();
    let etcd = tokio::task::spawn_blocking(move || Etcd::start_tls(tls))
        .await
        .expect("join")
        .expect("start etcd with TLS");
    assert!(etcd.url.starts_with("https://"));
    let mut opts = options(&etcd, "/registry");
    opts.ca_file = Some(ca.clone());
    opts.cert_file = Some(client_cert);
    opts.key_file = Some(client_key);
    let s = store_on(opts).await;
    let c = s
        .create(configmap("tls", "1"), false)
        .await
        .expect("create");
    let mut rx = s
        .watch(WatchOptions {
            kind: Some(Kind::ConfigMap),
            resource_version: Some(rv(&c)),
            ..Default::default()
        })
        .expect("watch");
    let d = s
        .create(configmap("tls2", "1"), false)
        .await
        .expect("create");
    let (_, o) = next_change(&mut rx).await;
    assert_eq!(rv(&o), rv(&d), "the watch runs over TLS too");
    // Without a client certificate etcd refuses the connection.
    let mut anonymous = options(&etcd, "/registry");
    anonymous.ca_file = Some(ca);
    anonymous.request_timeout = Duration::from_secs(3);
    assert!(EtcdBackend::connect(anonymous).await.is_err());
}

fn node_port_service(name: &str) -> Object {
    Object::Service(v1::Service {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(v1::ServiceSpec {
            r#type: "NodePort".into(),
            ports: vec![v1::ServicePort {
                port: 80,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn addresses(o: &Object) -> (String, i32) {
    let Object::Service(s) = o else {
        panic!("not a Service: {o:?}")
    };
    let spec = s.spec.as_ref().expect("spec");
    (spec.cluster_ip.clone(), spec.ports[0].node_port)
}

/// Two replicas allocating at once from one small range: every ClusterIP and NodePort is
/// handed out once (the bitmaps in etcd are CAS-guarded), a full range is refused on both, and
/// a deletion through one replica frees its address for the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_never_hand_out_one_address_twice() {
    let etcd = start_etcd().await;
    let config = StoreConfig {
        // 16 addresses: the network, .1 and the broadcast address are never handed out.
        service_cluster_ip_range: "10.0.0.0/28".parse().expect("range"),
        ..Default::default()
    };
    let open = || async {
        let b = EtcdBackend::connect(options(&etcd, "/registry"))
            .await
            .expect("connect");
        Store::open(Arc::new(b), config.clone())
            .await
            .expect("open")
    };
    let (a, b) = (open().await, open().await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..13 {
        let via = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move { via.create(node_port_service(&format!("s{i}")), false).await });
    }
    let mut seen_ips = std::collections::HashSet::new();
    let mut seen_ports = std::collections::HashSet::new();
    while let Some(r) = tasks.join_next().await {
        let (ip, port) = addresses(&r.expect("join").expect("create"));
        assert!(seen_ips.insert(ip.clone()), "{ip} handed out twice");
        assert!(seen_ports.insert(port), "{port} handed out twice");
    }
    assert_eq!(seen_ips.len(), 13);
    // The bitmaps are etcd keys, as upstream's RangeAllocations.
    assert!(etcd_mod_revision(&etcd, "/registry/ranges/serviceips").is_some());
    assert!(etcd_mod_revision(&etcd, "/registry/ranges/servicenodeports").is_some());
    for via in [&a, &b] {
        let err = via
            .create(node_port_service("one-too-many"), false)
            .await
            .expect_err("the range is full");
        assert!(err.to_string().contains("range is full"), "{err}");
    }
    // Freed through one replica, the address is handed out through the other at once, even
    // before that replica's watch has delivered the release (its cached bitmap is then stale:
    // a refusal from it is checked against etcd). Ten rounds, to meet that window.
    for round in 0..10 {
        let (from, to) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let victim = format!("s{round}");
        let freed = addresses(&from.get(Kind::Service, "default", &victim).expect("get")).0;
        from.delete(Kind::Service, "default", &victim, &Default::default())
            .await
            .expect("delete");
        let again = to
            .create(node_port_service(&format!("after{round}")), false)
            .await
            .unwrap_or_else(|e| {
                panic!("round {round}: the freed address is handed out again: {e}")
            });
        assert_eq!(addresses(&again).0, freed, "round {round}");
    }
}
