//! Carrying a request id from a watch event to the writes it causes (kube-apiserver's Audit-ID
//! seen end to end): the store stamps each watch event with the `x-request-id` of the write
//! that made it; the informer makes that id current while its handlers run, so a work queue
//! remembers it with the keys they add; the controller runtime reconciles such a key inside
//! [`scope`]; and this client attaches the id of the scope to every request it sends
//! ([`outgoing`]). A gRPC server's request layer makes the id of the request it serves current
//! while polling its handler ([`serving`]): the store stamps that request's writes with it, and
//! a handler that writes through this client (the Workloads service) sends it on. One `coxctl apply` can then be followed from the store's log line for the
//! Deployment to the controller's and to the store's line for the ReplicaSet it created.
//!
//! Ids are checked with [`crate::request_id::valid`] where they enter (bounded length and
//! charset); nothing is allocated or looked up for events and requests without one.
use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use crate::request_id;

tokio::task_local! {
    static TASK_ID: Arc<str>;
}

thread_local! {
    /// The id of the watch event whose handlers this thread is running.
    static EVENT_ID: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

thread_local! {
    /// The id of the gRPC request whose handler this thread is polling.
    static SERVING: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Makes `id` the served request's id until dropped (then puts back the previous one).
pub struct ServingGuard(Option<Arc<str>>);

/// Mark `id` as the id of the request this thread serves, for as long as the guard lives.
pub fn serving(id: &Arc<str>) -> ServingGuard {
    ServingGuard(SERVING.with(|c| c.replace(Some(id.clone()))))
}

impl Drop for ServingGuard {
    fn drop(&mut self) {
        let prev = self.0.take();
        SERVING.with(|c| *c.borrow_mut() = prev);
    }
}

/// The id of the request being served on this thread (see [`serving`]).
pub fn serving_id() -> Option<Arc<str>> {
    SERVING.with(|c| c.borrow().clone())
}

/// A watch event's `request_id` field as an id: None when empty or malformed.
pub fn parse(id: &str) -> Option<Arc<str>> {
    (!id.is_empty() && request_id::valid(id)).then(|| id.into())
}

/// Run `f` (an informer applying an event and calling its handlers) with `id` as the current
/// event's id. Without an id, `f` runs as is.
pub fn with_event<T>(id: Option<&Arc<str>>, f: impl FnOnce() -> T) -> T {
    let Some(id) = id else { return f() };
    let prev = EVENT_ID.with(|c| c.replace(Some(id.clone())));
    struct Restore(Option<Arc<str>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            EVENT_ID.with(|c| *c.borrow_mut() = prev);
        }
    }
    let _restore = Restore(prev);
    f()
}

/// The id of the watch event being handled on this thread (see [`with_event`]).
pub fn event_id() -> Option<Arc<str>> {
    EVENT_ID.with(|c| c.borrow().clone())
}

/// Run `fut` with `id` (if any) as the id of its requests.
pub async fn scope<F: Future>(id: Option<Arc<str>>, fut: F) -> F::Output {
    match id {
        Some(id) => TASK_ID.scope(id, fut).await,
        None => fut.await,
    }
}

/// The id of the current [`scope`], if any.
pub fn current() -> Option<Arc<str>> {
    TASK_ID.try_with(Arc::clone).ok()
}

/// `msg` as a request carrying the id of the current [`scope`], else of the request being
/// served ([`serving`]), in `x-request-id`: the interceptor of every call this crate's client
/// makes.
pub fn outgoing<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(id) = current().or_else(serving_id) {
        if let Ok(v) = tonic::metadata::MetadataValue::try_from(&*id) {
            req.metadata_mut().insert(request_id::HEADER, v);
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_are_taken_from_events() {
        assert_eq!(parse("").as_deref(), None);
        assert_eq!(parse("a b").as_deref(), None);
        assert_eq!(parse(&"x".repeat(65)).as_deref(), None);
        assert_eq!(parse("apply-1").as_deref(), Some("apply-1"));
    }

    #[test]
    fn the_event_id_is_current_only_while_its_handlers_run() {
        assert!(event_id().is_none());
        let id: Arc<str> = "ev-1".into();
        let inner = with_event(Some(&id), || {
            let nested: Arc<str> = "ev-2".into();
            let n = with_event(Some(&nested), event_id);
            (event_id(), n)
        });
        assert_eq!(inner.0.as_deref(), Some("ev-1"));
        assert_eq!(inner.1.as_deref(), Some("ev-2"));
        assert!(event_id().is_none());
        assert!(with_event(None, event_id).is_none());
    }

    #[tokio::test]
    async fn requests_in_a_scope_carry_its_id_and_others_none() {
        let bare = outgoing(());
        assert!(bare.metadata().get(request_id::HEADER).is_none());
        let (id, req) = scope(Some("rec-7".into()), async { (current(), outgoing(())) }).await;
        assert_eq!(id.as_deref(), Some("rec-7"));
        assert_eq!(
            req.metadata()
                .get(request_id::HEADER)
                .unwrap()
                .to_str()
                .unwrap(),
            "rec-7"
        );
        assert!(current().is_none());
        assert!(scope(None, async { current() }).await.is_none());
        let served: Arc<str> = "srv-1".into();
        let req = {
            let _g = serving(&served);
            outgoing(())
        };
        assert_eq!(
            req.metadata()
                .get(request_id::HEADER)
                .unwrap()
                .to_str()
                .unwrap(),
            "srv-1"
        );
        assert!(serving_id().is_none(), "the guard puts back what was there");
    }
}
