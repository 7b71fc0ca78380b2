//! The create path's CPU, in process (no gRPC, no disk): `Store::create` of pods on the in-memory
//! backend, one at a time, or only what the API crate does to each (defaults and validation).
//!
//! ```text
//! cargo bench -p coxswain-store --bench creates -- create 3000
//! cargo bench -p coxswain-store --bench creates -- validate 3000
//! ```
//!
//! Wall time here is noisy on a shared machine; `bench/create-cpu.sh` runs this binary under
//! callgrind at two counts and prints instructions per operation (the difference over the
//! difference in count, so start-up is left out).
use std::sync::Arc;
use std::time::Instant;

use coxswain_api::kinds::Object;
use coxswain_store::backend::EmbeddedBackend;
use coxswain_store::{Store, StoreConfig};

/// A pod as a Deployment's ReplicaSet makes it: owner reference, labels, one container with
/// ports, env, requests and limits, a readiness probe and a mounted volume.
const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
  labels: {app: web, pod-template-hash: 5d9f7c6b8}
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: web-5d9f7c6b8, uid: 6f1c1c2e-7d1b-4e0e-9a43-2f4f0c5b9d10, controller: true, blockOwnerDeletion: true}
spec:
  containers:
  - name: web
    image: nginx:1.27
    ports:
    - {name: http, containerPort: 80}
    env:
    - {name: MODE, value: production}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {cpu: 500m, memory: 256Mi}
    readinessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 5
    volumeMounts:
    - {name: cache, mountPath: /var/cache/nginx}
  volumes:
  - name: cache
    emptyDir: {}
"#;

fn pod() -> Object {
    match coxswain_api::manifest::parse_manifests(POD) {
        Ok(mut m) => m.remove(0).object,
        Err(e) => panic!("the bench pod does not parse: {e}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mode = args.first().map_or("create", String::as_str).to_string();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3000);
    let template = pod();
    match mode.as_str() {
        "validate" => {
            let start = Instant::now();
            let mut errors = 0;
            for i in 0..n {
                let mut o = template.clone();
                o.meta_mut().name = format!("web-{i}");
                coxswain_api::defaults::apply_defaults(&mut o);
                errors += coxswain_api::validation::validate(&o).len();
            }
            assert_eq!(errors, 0, "the bench pod must be valid");
            report("validate", n, start);
        }
        "create" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let backend = Arc::new(EmbeddedBackend::memory());
                let store = Store::open(backend, StoreConfig::default())
                    .await
                    .expect("open store");
                let start = Instant::now();
                for i in 0..n {
                    let mut o = template.clone();
                    o.meta_mut().name = format!("web-{i}");
                    store.create(o, false).await.expect("create");
                }
                report("create", n, start);
            });
        }
        other => panic!("unknown mode {other:?}: create or validate"),
    }
}

fn report(what: &str, n: usize, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{what}: {n} in {secs:.3} s, {:.0}/s, {:.1} µs each",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}
