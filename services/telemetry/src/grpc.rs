//! The gRPC request metrics of every coxswain server, in one tower layer:
//! `apiserver_request_total{verb,resource,subresource,code}` and
//! `apiserver_request_duration_seconds{verb,resource,subresource}`, as kube-apiserver names
//! them (`subresource` is "status", "binding" or empty).
//!
//! - `verb` and `resource` come from a fixed table of the RPCs in `proto/`; any other path is
//!   `OTHER`/`other`, so a client cannot grow the label set.
//! - The ObjectStore's handlers know the kind only after decoding; they put it in the
//!   [`ResourceSlot`] this layer adds to each request's extensions ([`set_resource`]).
//! - `code` is the HTTP status kube-apiserver would answer with for the gRPC status (NotFound
//!   404, Conflict/AlreadyExists 409, too-old watch 410, ...), so `code=~"5.."` queries carry
//!   over. A unary success carries its status in the trailers; an error is trailers-only, its
//!   `grpc-status` in the response headers, which is what this layer reads.
//! - A stream (watch) is counted and timed when its response starts.
//! - A request carrying a well-formed `x-request-id` ([`coxswain_client::request_id`]) runs in
//!   a `request{request_id=..}` span (so the handler's own log lines carry the id), is logged
//!   once at INFO when it completes (verb, resource, code, latency, id), and gets the id back
//!   in its response headers. Requests without an id are not logged: no cost on the hot path.
//! - While the handler of such a request runs, [`current_request_id`] returns its id: the store
//!   stamps the watch events of the request's writes with it, so the controllers acting on them
//!   send it on with their own writes.
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;

/// Filled by a handler with the resource (plural, lowercase) its request is about, and the
/// subresource when the path does not say it.
#[derive(Clone, Default, Debug)]
pub struct ResourceSlot(Arc<(OnceLock<&'static str>, OnceLock<&'static str>)>);

impl ResourceSlot {
    pub fn set(&self, resource: &'static str) {
        let _ = self.0 .0.set(resource);
    }
    pub fn set_subresource(&self, subresource: &'static str) {
        let _ = self.0 .1.set(subresource);
    }
    fn get(&self) -> (Option<&'static str>, Option<&'static str>) {
        (self.0 .0.get().copied(), self.0 .1.get().copied())
    }
}

/// Name the resource of the request whose extensions these are (no-op outside the layer).
pub fn set_resource(extensions: &http::Extensions, resource: &'static str) {
    if let Some(slot) = extensions.get::<ResourceSlot>() {
        slot.set(resource);
    }
}

/// (gRPC path, verb, resource[/subresource] when the handler does not name one).
const ROUTES: &[(&str, &str, &str)] = &[
    ("/coxswain.v1.ObjectStore/Apply", "APPLY", "unknown"),
    ("/coxswain.v1.ObjectStore/Create", "CREATE", "unknown"),
    ("/coxswain.v1.ObjectStore/Get", "GET", "unknown"),
    ("/coxswain.v1.ObjectStore/List", "LIST", "unknown"),
    ("/coxswain.v1.ObjectStore/Update", "UPDATE", "unknown"),
    (
        "/coxswain.v1.ObjectStore/UpdateStatus",
        "UPDATE",
        "unknown/status",
    ),
    ("/coxswain.v1.ObjectStore/Patch", "PATCH", "unknown"),
    ("/coxswain.v1.ObjectStore/Delete", "DELETE", "unknown"),
    ("/coxswain.v1.ObjectStore/Watch", "WATCH", "unknown"),
    ("/coxswain.v1.ObjectStore/Bind", "CREATE", "pods/binding"),
    (
        "/coxswain.v1.ObjectStore/BindBatch",
        "CREATE",
        "pods/binding",
    ),
    ("/coxswain.v1.Workloads/Scale", "SCALE", "workloads"),
    ("/coxswain.v1.Workloads/SetImage", "SETIMAGE", "workloads"),
    (
        "/coxswain.v1.Workloads/RolloutStatus",
        "ROLLOUTSTATUS",
        "workloads",
    ),
    (
        "/coxswain.v1.Workloads/RolloutHistory",
        "ROLLOUTHISTORY",
        "workloads",
    ),
    (
        "/coxswain.v1.Workloads/RolloutUndo",
        "ROLLOUTUNDO",
        "workloads",
    ),
    ("/coxswain.v1.Workloads/Pause", "PAUSE", "workloads"),
    ("/coxswain.v1.Workloads/Resume", "RESUME", "workloads"),
    ("/coxswain.v1.Workloads/Restart", "RESTART", "workloads"),
    ("/coxswain.v1.Scheduler/Explain", "EXPLAIN", "scheduler"),
    (
        "/coxswain.v1.Scheduler/ListProfiles",
        "LISTPROFILES",
        "scheduler",
    ),
    (
        "/coxswain.v1.Autoscaler/Recommend",
        "RECOMMEND",
        "autoscaler",
    ),
    ("/coxswain.v1.Autoscaler/History", "HISTORY", "autoscaler"),
    ("/coxswain.v1.NodeAgent/Logs", "LOGS", "nodeagent"),
    ("/coxswain.v1.NodeAgent/Stats", "STATS", "nodeagent"),
    ("/coxswain.v1.Metrics/GetNodeMetrics", "GET", "nodemetrics"),
    (
        "/coxswain.v1.Metrics/ListNodeMetrics",
        "LIST",
        "nodemetrics",
    ),
    ("/coxswain.v1.Metrics/GetPodMetrics", "GET", "podmetrics"),
    ("/coxswain.v1.Metrics/ListPodMetrics", "LIST", "podmetrics"),
    (
        "/coxswain.v1.Metrics/PushMetrics",
        "CREATE",
        "custommetrics",
    ),
    ("/coxswain.v1.Metrics/GetPodsMetric", "GET", "custommetrics"),
    (
        "/coxswain.v1.Metrics/GetObjectMetric",
        "GET",
        "custommetrics",
    ),
    (
        "/coxswain.v1.Metrics/GetExternalMetric",
        "GET",
        "externalmetrics",
    ),
    ("/grpc.health.v1.Health/Check", "GET", "health"),
    ("/grpc.health.v1.Health/Watch", "WATCH", "health"),
];

/// The verb, default resource and subresource of a gRPC path.
pub fn route(path: &str) -> (&'static str, &'static str, &'static str) {
    if let Some((_, v, r)) = ROUTES.iter().find(|(p, _, _)| *p == path) {
        let (r, sub) = r.split_once('/').unwrap_or((r, ""));
        return (v, r, sub);
    }
    if path.starts_with("/grpc.reflection.") {
        return ("WATCH", "reflection", "");
    }
    ("OTHER", "other", "")
}

/// The HTTP status kube-apiserver answers with for what this gRPC status means.
pub fn http_code(grpc: i32) -> &'static str {
    match grpc {
        0 => "200",
        1 => "499",  // Cancelled (the client went away)
        2 => "500",  // Unknown
        3 => "400",  // InvalidArgument (Invalid: 422 upstream; 400 for malformed)
        4 => "504",  // DeadlineExceeded
        5 => "404",  // NotFound
        6 => "409",  // AlreadyExists
        7 => "403",  // PermissionDenied
        8 => "429",  // ResourceExhausted
        9 => "400",  // FailedPrecondition
        10 => "409", // Aborted (Conflict)
        11 => "410", // OutOfRange (a watch that is too old: 410 Gone)
        12 => "501", // Unimplemented
        13 => "500", // Internal
        14 => "503", // Unavailable
        15 => "500", // DataLoss
        16 => "401", // Unauthenticated
        _ => "500",
    }
}

/// The layer: `Server::builder().layer(RequestMetricsLayer)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestMetricsLayer;

impl<S> tower_layer::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RequestMetrics<S> {
    inner: S,
}

impl<S, B, RB> tower_service::Service<http::Request<B>> for RequestMetrics<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Observed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let (verb, resource, subresource) = route(req.uri().path());
        let slot = ResourceSlot::default();
        req.extensions_mut().insert(slot.clone());
        let request_id = request_id_of(req.headers());
        let span = request_id
            .as_ref()
            .map(|id| tracing::info_span!("request", request_id = %id.0));
        let inner = {
            let _entered = span.as_ref().map(|s| s.enter());
            let _current = request_id
                .as_ref()
                .map(|id| coxswain_client::trace::serving(&id.0));
            self.inner.call(req)
        };
        Observed {
            inner,
            start: Instant::now(),
            verb,
            resource,
            subresource,
            slot,
            request_id,
            span,
        }
    }
}

/// The well-formed `x-request-id` of the gRPC request being handled on this thread, if any:
/// what the handler's writes are attributed to ([`coxswain_client::trace::serving`]).
pub fn current_request_id() -> Option<Arc<str>> {
    coxswain_client::trace::serving_id()
}

/// The request's well-formed `x-request-id` (None when absent or malformed: ignored).
fn request_id_of(headers: &http::HeaderMap) -> Option<RequestId> {
    let v = headers.get(coxswain_client::request_id::HEADER)?;
    match v.to_str() {
        Ok(id) if coxswain_client::request_id::valid(id) => Some(RequestId(id.into(), v.clone())),
        _ => {
            tracing::debug!("ignoring a malformed x-request-id");
            None
        }
    }
}

/// A request id and its header value (echoed in the response).
pub struct RequestId(Arc<str>, http::HeaderValue);

pin_project! {
    pub struct Observed<F> {
        #[pin]
        inner: F,
        start: Instant,
        verb: &'static str,
        resource: &'static str,
        subresource: &'static str,
        slot: ResourceSlot,
        request_id: Option<RequestId>,
        span: Option<tracing::Span>,
    }
}

impl<F, RB, E> Future for Observed<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = {
            let _entered = this.span.as_ref().map(|s| s.enter());
            let _current = this
                .request_id
                .as_ref()
                .map(|id| coxswain_client::trace::serving(&id.0));
            std::task::ready!(this.inner.poll(cx))
        };
        let code = match &out {
            Ok(resp) => resp
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map_or("200", http_code),
            Err(_) => "500",
        };
        let (resource, subresource) = this.slot.get();
        let resource = resource.unwrap_or(this.resource);
        let subresource = subresource.unwrap_or(this.subresource);
        let verb: &'static str = this.verb;
        let elapsed = this.start.elapsed();
        handles::record(verb, resource, subresource, code, elapsed.as_secs_f64());
        let mut out = out;
        if let Some(RequestId(id, value)) = this.request_id.take() {
            tracing::info!(
                request_id = %id,
                verb,
                resource,
                subresource,
                code,
                latency_ms = elapsed.as_secs_f64() * 1e3,
                "request"
            );
            if let Ok(resp) = &mut out {
                resp.headers_mut()
                    .insert(coxswain_client::request_id::HEADER, value);
            }
        }
        Poll::Ready(out)
    }
}

/// The request metrics' handles, resolved once per label set and thread: a request then costs
/// one small hash lookup, a counter increment and a histogram record — no label vector, key
/// clone or registry lookup (what `metrics::counter!` with runtime labels does every time).
/// Every label is a `&'static str` from a fixed table, so the set is bounded; the key is the
/// strings' addresses and lengths.
mod handles {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::{BuildHasherDefault, Hasher};

    type Key = [(usize, usize); 4];

    fn key(labels: [&'static str; 4]) -> Key {
        labels.map(|s| (s.as_ptr() as usize, s.len()))
    }

    /// FxHash (rustc's): the key is a few machine words of our own, not client input.
    #[derive(Default)]
    struct Fx(u64);

    impl Hasher for Fx {
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.write_u64(u64::from(*b));
            }
        }
        fn write_u64(&mut self, v: u64) {
            self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        fn write_usize(&mut self, v: usize) {
            self.write_u64(v as u64);
        }
        fn finish(&self) -> u64 {
            self.0
        }
    }

    type Map = HashMap<Key, (metrics::Counter, metrics::Histogram), BuildHasherDefault<Fx>>;

    /// At most this many label sets per thread (the routes × codes are far fewer).
    const MAX: usize = 4096;

    thread_local! {
        static HANDLES: RefCell<Map> = RefCell::new(Map::default());
    }

    fn resolve(
        verb: &'static str,
        resource: &'static str,
        subresource: &'static str,
        code: &'static str,
    ) -> (metrics::Counter, metrics::Histogram) {
        (
            metrics::counter!("apiserver_request_total", "verb" => verb, "resource" => resource, "subresource" => subresource, "code" => code),
            metrics::histogram!("apiserver_request_duration_seconds", "verb" => verb, "resource" => resource, "subresource" => subresource),
        )
    }

    pub(super) fn record(
        verb: &'static str,
        resource: &'static str,
        subresource: &'static str,
        code: &'static str,
        seconds: f64,
    ) {
        let k = key([verb, resource, subresource, code]);
        HANDLES.with(|h| {
            let mut h = h.borrow_mut();
            if let Some((c, d)) = h.get(&k) {
                c.increment(1);
                d.record(seconds);
                return;
            }
            let (c, d) = resolve(verb, resource, subresource, code);
            c.increment(1);
            d.record(seconds);
            if h.len() < MAX {
                h.insert(k, (c, d));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_fall_into_one_bounded_label_pair() {
        assert_eq!(
            route("/coxswain.v1.ObjectStore/Create"),
            ("CREATE", "unknown", "")
        );
        assert_eq!(
            route("/coxswain.v1.ObjectStore/UpdateStatus"),
            ("UPDATE", "unknown", "status")
        );
        assert_eq!(route("/evil/aaaa"), ("OTHER", "other", ""));
        assert_eq!(
            route("/coxswain.v1.ObjectStore/Nope"),
            ("OTHER", "other", "")
        );
    }

    #[test]
    fn grpc_codes_map_to_the_apiservers_http_codes() {
        assert_eq!(http_code(0), "200");
        assert_eq!(http_code(5), "404");
        assert_eq!(http_code(10), "409");
        assert_eq!(http_code(11), "410");
        assert_eq!(http_code(99), "500");
    }
}
