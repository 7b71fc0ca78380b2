//! Projected volumes (the kubelet's `projected` volume plugin and its token manager): the files
//! of a ServiceAccount token (TokenRequest, bound to the pod), ConfigMap and Secret items and
//! downward-API fields, written into the pod's volume directory, which the process runtime maps
//! at the container's mount path (`/var/run/secrets/kubernetes.io/serviceaccount` for the
//! admission's `kube-api-access-*` volume).
//!
//! Tokens are kept per (ServiceAccount, pod, audience, lifetime) and requested again once
//! older than 80 % of their lifetime or 24 hours, as the kubelet's token manager
//! (`requiresRefresh`); the pod worker rewrites the volume every `--sync-frequency`, so a token
//! is replaced well before it expires.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use coxswain_api::v1::{Pod, ProjectedVolumeSource, TokenRequest};
use tokio::time::Instant;

use crate::pod::{Data, ObjectSource};

/// The token manager's cache key: namespace, ServiceAccount, pod uid, audience, lifetime.
type Key = (String, String, String, String, i64);

/// A token and when it was issued and expires.
#[derive(Clone, Debug)]
struct Cached {
    token: String,
    issued: Instant,
    ttl: Duration,
}

/// The kubelet token manager's cache.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<Tokens>,
}

#[derive(Default)]
struct Tokens {
    map: HashMap<Key, Cached>,
    /// The size at which the next insertion first drops the tokens past their lifetime (those
    /// of pods gone): twice what was left by the last sweep, so a sweep's cost is paid for by
    /// the insertions before it (O(1) amortized per token requested) and the map holds at most
    /// about twice the tokens still alive.
    sweep_at: usize,
    /// Entries looked at by sweeps, all told (for the tests of the amortized cost).
    swept: usize,
}

/// The fewest entries the map holds before its first sweep.
const MIN_SWEEP: usize = 64;

/// `requiresRefresh`: past 80 % of the lifetime, or older than 24 hours.
fn requires_refresh(c: &Cached, now: Instant) -> bool {
    let age = now.saturating_duration_since(c.issued);
    age > c.ttl.mul_f64(0.8) || age > Duration::from_secs(24 * 3600)
}

impl Tokens {
    fn insert(&mut self, key: Key, c: Cached, now: Instant) {
        if self.map.len() >= self.sweep_at.max(MIN_SWEEP) {
            self.swept += self.map.len();
            self.map
                .retain(|_, c| now.saturating_duration_since(c.issued) < c.ttl);
            self.sweep_at = 2 * self.map.len();
        }
        self.map.insert(key, c);
    }
}

impl TokenCache {
    /// The token for `key`, from the cache while fresh, else from `fetch` (its lifetime).
    pub async fn get<F, Fut>(&self, key: Key, fetch: F) -> Result<String, String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(String, Duration), String>>,
    {
        let now = Instant::now();
        if let Some(c) = self
            .tokens
            .lock()
            .ok()
            .and_then(|m| m.map.get(&key).cloned())
        {
            if !requires_refresh(&c, now) {
                return Ok(c.token);
            }
        }
        let (token, ttl) = fetch().await?;
        if let Ok(mut m) = self.tokens.lock() {
            let cached = Cached {
                token: token.clone(),
                issued: now,
                ttl,
            };
            m.insert(key, cached, now);
        }
        Ok(token)
    }
}

/// A downward-API field of the pod (the fields a projected volume may name).
fn field(pod: &Pod, path: &str) -> Result<String, String> {
    let meta = pod.metadata.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    Ok(match path {
        "metadata.namespace" => meta.namespace,
        "metadata.name" => meta.name,
        "metadata.uid" => meta.uid,
        "spec.serviceAccountName" => spec.service_account_name,
        "spec.nodeName" => spec.node_name,
        "metadata.labels" => meta
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}\n"))
            .collect(),
        "metadata.annotations" => meta
            .annotations
            .iter()
            .map(|(k, v)| format!("{k}={v:?}\n"))
            .collect(),
        other => {
            if let Some(k) = other
                .strip_prefix("metadata.labels['")
                .and_then(|r| r.strip_suffix("']"))
            {
                meta.labels.get(k).cloned().unwrap_or_default()
            } else if let Some(k) = other
                .strip_prefix("metadata.annotations['")
                .and_then(|r| r.strip_suffix("']"))
            {
                meta.annotations.get(k).cloned().unwrap_or_default()
            } else {
                return Err(format!("unsupported fieldPath {other:?}"));
            }
        }
    })
}

/// The files of a projected volume of `pod` (path → content).
pub async fn files(
    src: &dyn ObjectSource,
    pod: &Pod,
    p: &ProjectedVolumeSource,
) -> Result<Data, String> {
    let meta = pod.metadata.clone().unwrap_or_default();
    let sa = pod
        .spec
        .as_ref()
        .map(|s| s.service_account_name.clone())
        .unwrap_or_default();
    let mut out = Data::new();
    for s in &p.sources {
        if let Some(t) = &s.service_account_token {
            let req = TokenRequest {
                namespace: meta.namespace.clone(),
                name: sa.clone(),
                audiences: match t.audience.is_empty() {
                    true => vec![],
                    false => vec![t.audience.clone()],
                },
                expiration_seconds: t.expiration_seconds.map_or(3600, i64::from),
                bound_object_ref: Some(coxswain_api::v1::BoundObjectReference {
                    kind: "Pod".into(),
                    name: meta.name.clone(),
                    uid: meta.uid.clone(),
                }),
            };
            let token = src.token(req).await?;
            out.insert(t.path.clone(), token.into_bytes());
            continue;
        }
        let (kind, name, items, optional) = match (&s.config_map, &s.secret) {
            (Some(cm), _) => (
                "ConfigMap",
                &cm.name,
                &cm.items,
                cm.optional.unwrap_or(false),
            ),
            (_, Some(sec)) => (
                "Secret",
                &sec.name,
                &sec.items,
                sec.optional.unwrap_or(false),
            ),
            _ => {
                if let Some(d) = &s.downward_api {
                    for it in &d.items {
                        let path = it.field_ref.as_ref().map_or("", |f| f.field_path.as_str());
                        out.insert(it.path.clone(), field(pod, path)?.into_bytes());
                    }
                }
                continue;
            }
        };
        let data = match src.data(kind, &meta.namespace, name).await? {
            Some(d) => d,
            None if optional => continue,
            None => {
                let lower = if kind == "ConfigMap" {
                    "configmap"
                } else {
                    "secret"
                };
                return Err(format!("{lower} \"{name}\" not found"));
            }
        };
        if items.is_empty() {
            out.extend(data);
        } else {
            for i in items {
                match data.get(&i.key) {
                    Some(d) => {
                        out.insert(i.path.clone(), d.clone());
                    }
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configmap references non-existent config key: {}",
                            i.key
                        ))
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_token_is_requested_again_past_80_percent_of_its_life() {
        let cache = TokenCache::default();
        let calls = AtomicUsize::new(0);
        let key = || -> Key {
            (
                "ns".into(),
                "default".into(),
                "uid".into(),
                String::new(),
                3607,
            )
        };
        let fetch = || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { Ok((format!("t{n}"), Duration::from_secs(1000))) }
        };
        assert_eq!(cache.get(key(), fetch).await.unwrap(), "t0");
        tokio::time::advance(Duration::from_secs(799)).await;
        assert_eq!(cache.get(key(), fetch).await.unwrap(), "t0");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.get(key(), fetch).await.unwrap(), "t1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Another pod (uid) has its own token.
        let other: Key = (
            "ns".into(),
            "default".into(),
            "uid2".into(),
            String::new(),
            3607,
        );
        assert_eq!(cache.get(other, fetch).await.unwrap(), "t2");
        // A failed request is not cached.
        let failing = || async { Err::<(String, Duration), _>("down".to_string()) };
        let third: Key = ("ns".into(), "x".into(), "u".into(), String::new(), 1);
        assert!(cache.get(third, failing).await.is_err());
    }

    fn key(i: usize) -> Key {
        (
            "ns".into(),
            "sa".into(),
            format!("pod-{i}"),
            String::new(),
            600,
        )
    }

    async fn fetch_for(ttl: Duration) -> Result<(String, Duration), String> {
        Ok(("t".to_string(), ttl))
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_past_their_lifetime_are_dropped_once_the_cache_has_doubled() {
        let cache = TokenCache::default();
        let short = Duration::from_secs(10);
        for i in 0..MIN_SWEEP {
            cache.get(key(i), || fetch_for(short)).await.unwrap();
        }
        assert_eq!(cache.tokens.lock().unwrap().map.len(), MIN_SWEEP);
        // The pods are gone and their tokens' lifetimes over.
        tokio::time::advance(Duration::from_secs(11)).await;
        let long = Duration::from_secs(3600);
        cache.get(key(MIN_SWEEP), || fetch_for(long)).await.unwrap();
        {
            let t = cache.tokens.lock().unwrap();
            assert_eq!(t.map.len(), 1, "the expired ones went at the threshold");
            assert_eq!(t.swept, MIN_SWEEP);
        }
        // Live tokens stay, and are served from the cache.
        let mut fetched = false;
        let token = cache
            .get(key(MIN_SWEEP), || {
                fetched = true;
                fetch_for(long)
            })
            .await
            .unwrap();
        assert_eq!(token, "t");
        assert!(!fetched);
    }

    #[tokio::test(start_paused = true)]
    async fn requesting_n_tokens_costs_o_n_in_all() {
        let cache = TokenCache::default();
        let n = 20_000;
        for i in 0..n {
            // Every other token outlives the run, the rest expire soon after their request.
            let ttl = Duration::from_secs(if i % 2 == 0 { 3600 } else { 1 });
            cache.get(key(i), || fetch_for(ttl)).await.unwrap();
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        let t = cache.tokens.lock().unwrap();
        // Each sweep looks at no more than twice the entries inserted since the last one (a
        // sweep per request, as before, would be n²/2 = 2·10⁸ here).
        assert!(t.swept <= 4 * n, "swept {} entries for {n} tokens", t.swept);
        // Bounded by about twice the live tokens.
        assert!(t.map.len() <= 2 * (n / 2) + MIN_SWEEP, "{}", t.map.len());
        assert!(t.map.len() >= n / 2);
    }

    #[test]
    fn downward_api_fields() {
        let pod = Pod {
            metadata: Some(coxswain_api::v1::ObjectMeta {
                namespace: "dev".into(),
                name: "p".into(),
                labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(field(&pod, "metadata.namespace").unwrap(), "dev");
        assert_eq!(field(&pod, "metadata.labels").unwrap(), "app=\"web\"\n");
        assert_eq!(field(&pod, "metadata.labels['app']").unwrap(), "web");
        assert!(field(&pod, "status.podIP").is_err());
    }
}
