//! Pages of a list, and lists at one past revision.
//!
//! A paged list is one consistent snapshot, as kube-apiserver's: the continue token carries the
//! first page's revision, and every later page is read at that revision, not at whatever the
//! store holds by then (`storage.EncodeContinue`; etcd3 store.go GetList reads the Range at the
//! token's revision). An `Exact` list (and a paged list with a resourceVersion N and no match,
//! upstream's legacy exact case) is read at its revision the same way.
//!
//! Where a past revision is read from:
//! - the watch cache, while its history still holds every change after that revision: the
//!   objects it holds now, with what each later change replaced put back (upstream's cacher
//!   serves these from its snapshots, KEP-4988);
//! - else the backend at that revision (etcd's Range at a revision, as upstream delegates to
//!   etcd); the embedded backends keep no past states, so there the cache's history is all;
//! - else 410 Expired: for a continue page with a token that continues the list at the most
//!   recent revision instead (upstream's `handleCompactedErrorForPaging`, rv -1).
//!
//! A revision this replica's cache has not reached yet (a token from another replica) is
//! waited for as a list "not older than" it is, and read from the backend when the wait runs
//! out.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;

/// Upstream's messages (etcd3 store.go).
const EXPIRED: &str = "The resourceVersion for the provided list is too old.";
const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// Keys read from the backend per request when a past revision is read there.
const BACKEND_CHUNK: usize = 1000;

/// A continue token, as kube-apiserver's: base64url (no padding) of
/// `{"v":"meta.k8s.io/v1","rv":R,"start":"<key>"}`. `rv` is the revision every page is read
/// at (the first page's; -1: the most recent, in the token an Expired answer hands out);
/// `start` the map key the next page starts at (the last key of the page before, then "\0").
#[derive(Serialize, Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// The token of the page that starts at map key `start`, read at `revision`.
pub(crate) fn encode_continue(start: &str, revision: i64) -> String {
    let token = ContinueToken {
        v: TOKEN_VERSION.into(),
        rv: revision,
        start: start.into(),
    };
    let json = serde_json::to_vec(&token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The map key a page starts at and the revision it is read at, with upstream's checks
/// (`storage.DecodeContinue`).
pub(crate) fn decode_continue(token: &str) -> Result<(String, i64)> {
    let bad = |why: &str| {
        StoreError::BadRequest(format!(
            "continue: Invalid value: {:?}: continue key is not valid: {why}",
            truncate_for_message(token)
        ))
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad("not base64url"))?;
    let t: ContinueToken = serde_json::from_slice(&raw).map_err(|_| bad("not a continue token"))?;
    if t.v != TOKEN_VERSION {
        return Err(bad("server does not recognize this encoded version"));
    }
    if t.rv == 0 {
        return Err(bad(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    if t.start.is_empty() {
        return Err(bad("encoded start key empty (version meta.k8s.io/v1)"));
    }
    // Upstream's path.Clean check: a key that climbs or skips a level is refused.
    if t.start
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(bad("generic invalid key"));
    }
    Ok((t.start, t.rv))
}

/// The field selector is one `kind` supports and the continue token decodes (to the map key
/// the page starts at).
pub(super) fn check_list_options(kind: Kind, opts: &ListOptions) -> Result<Option<String>> {
    opts.fields
        .check_supported(kind)
        .map_err(|e| StoreError::BadRequest(e.to_string()))?;
    match &opts.continue_token {
        Some(t) if !t.is_empty() => Ok(Some(decode_continue(t)?.0)),
        _ => Ok(None),
    }
}

/// The namespace a list of `kind` is confined to, if any.
fn list_namespace(kind: Kind, opts: &ListOptions) -> Option<&str> {
    opts.namespace
        .as_deref()
        .filter(|n| !n.is_empty() && kind.namespaced())
}

/// One page of `kind` from `c` (at the cache's revision), from the map key `start` on.
pub(super) fn list_in(
    c: &Cache,
    kind: Kind,
    opts: &ListOptions,
    start: Option<String>,
) -> ListResult {
    let ns = list_namespace(kind, opts);
    page(c.range(kind, ns, start.as_deref()), opts, c.revision)
}

/// One page from `items` (the candidates in key order from the page's start), read at
/// `revision`.
fn page<'a>(
    items: impl Iterator<Item = &'a Arc<Stored>>,
    opts: &ListOptions,
    revision: i64,
) -> ListResult {
    let mut page = Vec::new();
    let mut remaining = 0i64;
    for s in items {
        if !s.matches(&opts.labels, &opts.fields) {
            continue;
        }
        if opts.limit > 0 && page.len() >= opts.limit {
            remaining += 1;
            continue;
        }
        page.push(s.clone());
    }
    let continue_token = (remaining > 0)
        .then(|| page.last())
        .flatten()
        .map(|s: &Arc<Stored>| encode_continue(&format!("{}\0", s.key()), revision));
    ListResult {
        items: page,
        revision,
        continue_token,
        remaining,
    }
}

/// One page of `kind` as it was at `revision`, from the cache: the objects it holds now, with
/// what each change after `revision` replaced put back. None when the cache's history no
/// longer holds every change after `revision`.
fn list_at_in(
    c: &Cache,
    kind: Kind,
    opts: &ListOptions,
    start: Option<&str>,
    revision: i64,
) -> Option<ListResult> {
    if revision > c.revision {
        return None;
    }
    let events = c.events_after(revision).ok()?;
    let ns = list_namespace(kind, opts);
    let prefix = ns.map(|n| format!("{n}/"));
    let in_range = |k: &str| {
        start.is_none_or(|s| k >= s) && prefix.as_deref().is_none_or(|p| k.starts_with(p))
    };
    // Each key changed since: its state at `revision` (the first later change's `prev`; None:
    // it did not exist then).
    let mut then: BTreeMap<&str, Option<&Arc<Stored>>> = BTreeMap::new();
    for e in events {
        if e.object.kind == kind && in_range(e.object.key()) {
            then.entry(e.object.key()).or_insert(e.prev.as_ref());
        }
    }
    let now = c
        .range(kind, ns, start)
        .filter(|s| !then.contains_key(s.key()));
    let past = then.values().filter_map(|s| *s);
    Some(page(merge_by_key(now, past), opts, revision))
}

/// Two iterators in key order, merged in key order.
fn merge_by_key<'a>(
    a: impl Iterator<Item = &'a Arc<Stored>>,
    b: impl Iterator<Item = &'a Arc<Stored>>,
) -> impl Iterator<Item = &'a Arc<Stored>> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if x.key() > y.key() => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

impl Store {
    /// One page of `kind` exactly as it was at `revision` (an Exact list, or a page after the
    /// first of a paged list: `paging`, starting at `start`).
    pub(super) async fn list_exact(
        &self,
        kind: Kind,
        opts: &ListOptions,
        start: Option<String>,
        revision: i64,
        paging: bool,
    ) -> Result<ListResult> {
        let expired = || match (&start, paging) {
            (Some(s), true) => StoreError::Expired {
                message: INCONSISTENT_CONTINUE.into(),
                continue_token: Some(encode_continue(s, -1)),
            },
            _ => StoreError::Expired {
                message: EXPIRED.into(),
                continue_token: None,
            },
        };
        if let Err(too_large) = self.wait_until_fresh(revision).await {
            // This replica's cache lags; the backend may hold the revision already.
            return match self
                .list_at_from_backend(kind, opts, start.clone(), revision)
                .await
            {
                Ok(Some(l)) => Ok(l),
                Ok(None) | Err(StoreError::Backend(BackendError::FutureRevision(_))) => {
                    Err(too_large)
                }
                Err(StoreError::Backend(BackendError::Compacted(_))) => Err(expired()),
                Err(e) => Err(e),
            };
        }
        if let Some(l) = list_at_in(&self.cache(), kind, opts, start.as_deref(), revision) {
            return Ok(l);
        }
        match self
            .list_at_from_backend(kind, opts, start.clone(), revision)
            .await
        {
            Ok(Some(l)) => Ok(l),
            Ok(None) | Err(StoreError::Backend(BackendError::Compacted(_))) => Err(expired()),
            Err(e) => Err(e),
        }
    }

    /// One page of `kind` read from the backend at `revision`, decoded on the blocking pool and
    /// paged as from the cache. A page with no selector reads `limit` + 1 keys and takes
    /// remainingItemCount from the backend's count of the rest (as upstream); a filtered one
    /// reads every key of the kind (of the namespace) from `start` on, so its count is exact
    /// too. None for a backend that keeps no past states.
    async fn list_at_from_backend(
        &self,
        kind: Kind,
        opts: &ListOptions,
        start: Option<String>,
        revision: i64,
    ) -> Result<Option<ListResult>> {
        let prefix = match list_namespace(kind, opts) {
            Some(ns) => format!("/registry/{}/{ns}/", kind.plural()),
            None => format!("/registry/{}/", kind.plural()),
        };
        let kind_root = format!("/registry/{}/", kind.plural());
        let mut from = match &start {
            Some(s) => format!("{kind_root}{s}").max(prefix.clone()),
            None => prefix.clone(),
        };
        let mut kvs = Vec::new();
        if opts.limit > 0 && opts.labels.is_everything() && opts.fields.is_empty() {
            let Some(page) = self
                .inner
                .backend
                .range_at(&prefix, &from, revision, opts.limit + 1)
                .await?
            else {
                return Ok(None);
            };
            let objects = off_reactor(move || Cache::new(revision, page.kvs, 1)).await?;
            let mut l = list_in(&objects, kind, opts, start);
            if l.continue_token.is_some() {
                l.remaining = page.count - l.items.len() as i64;
            }
            return Ok(Some(l));
        }
        loop {
            let Some(page) = self
                .inner
                .backend
                .range_at(&prefix, &from, revision, BACKEND_CHUNK)
                .await?
            else {
                return Ok(None);
            };
            if let Some(last) = page.kvs.last() {
                from = format!("{}\0", last.key);
            }
            let more = page.more && !page.kvs.is_empty();
            kvs.extend(page.kvs);
            if !more {
                break;
            }
        }
        tracing::debug!(
            kind = kind.as_str(),
            revision,
            cache = self.revision(),
            keys = kvs.len(),
            "a list page at a revision the cache no longer holds is read from the backend"
        );
        let objects = off_reactor(move || Cache::new(revision, kvs, 1)).await?;
        Ok(Some(list_in(&objects, kind, opts, start)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::EmbeddedBackend;

    /// An Exact list at a revision the store has not reached waits as a list "not older than"
    /// it, then "Too large resource version", as the watch cache's waitUntilFreshAndBlock.
    #[tokio::test]
    async fn an_exact_list_from_the_future_is_too_large_after_the_wait() {
        let wait = std::time::Duration::from_millis(200);
        let config = StoreConfig {
            too_large_resource_version_wait: wait,
            ..Default::default()
        };
        let store = Store::open(Arc::new(EmbeddedBackend::memory()), config)
            .await
            .expect("store");
        let future = store.revision() + 100;
        let start = std::time::Instant::now();
        let e = store
            .list_fresh(
                Kind::ConfigMap,
                &ListOptions::default(),
                super::super::ListFreshness::Exact(future),
            )
            .await
            .err()
            .expect("too large");
        assert!(matches!(e, StoreError::TooLarge { requested, .. } if requested == future));
        assert!(start.elapsed() >= wait);
    }

    /// An Expired page answers OUT_OF_RANGE, reason Expired, with the token that continues at
    /// the most recent revision in the ErrorInfo (upstream: the Status's ListMeta.Continue).
    #[test]
    fn an_expired_page_carries_the_token_that_continues_it() {
        use tonic_types::StatusExt;
        let token = encode_continue("default/b\0", -1);
        let st = tonic::Status::from(StoreError::Expired {
            message: INCONSISTENT_CONTINUE.into(),
            continue_token: Some(token.clone()),
        });
        assert_eq!(st.code(), tonic::Code::OutOfRange);
        assert_eq!(st.message(), INCONSISTENT_CONTINUE);
        let d = st.get_error_details();
        let info = d.error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "Expired");
        assert_eq!(info.metadata["continue"], token);
    }

    #[test]
    fn continue_tokens_are_upstreams_and_checked_as_upstream() {
        let t = encode_continue("default/web-1\0", 42);
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&t)
            .expect("base64url");
        assert_eq!(
            String::from_utf8(json).expect("utf-8"),
            r#"{"v":"meta.k8s.io/v1","rv":42,"start":"default/web-1\u0000"}"#
        );
        assert_eq!(
            decode_continue(&t).expect("decodes"),
            ("default/web-1\0".to_string(), 42)
        );
        let enc = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let err = |t: &str| match decode_continue(t) {
            Err(e @ StoreError::BadRequest(_)) => e.to_string(),
            other => panic!("{other:?}"),
        };
        assert!(err("%%").starts_with("continue: Invalid value"));
        assert!(err(&enc("{}")).contains("not a continue token"));
        assert!(err(&enc(r#"{"v":"v2","rv":1,"start":"a"}"#)).contains("encoded version"));
        assert!(err(&enc(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#))
            .contains("incorrect encoded start resourceVersion"));
        assert!(
            err(&enc(r#"{"v":"meta.k8s.io/v1","rv":3,"start":""}"#)).contains("start key empty")
        );
        for climbs in ["../secrets/x", "a/../../b", "a//b", "./a", "a/"] {
            let json = format!(r#"{{"v":"meta.k8s.io/v1","rv":3,"start":"{climbs}"}}"#);
            assert!(err(&enc(&json)).contains("generic invalid key"), "{climbs}");
        }
        // -1: the most recent revision (an Expired answer's token).
        let again = encode_continue("ns/b\0", -1);
        assert_eq!(decode_continue(&again).expect("decodes").1, -1);
    }
}
