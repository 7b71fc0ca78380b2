//! Watch over gRPC: the store's events encoded straight from the cached objects' bytes.
//!
//! A watch event's object is already protobuf in the cache ([`Stored::bytes`]). Through the
//! generated service each watcher turned every event into a `coxswain.v1.WatchEvent` message:
//! the object's bytes copied into a `prost_types::Any`, its type URL, type, resourceVersion and
//! request id each a new `String`, then all of it encoded again into the response. With a few
//! pod watchers (scheduler, controllers, agents, benches) and every status write an event, that
//! was 4-5 allocations and one extra copy per event per watcher. [`StoreServer`] serves the
//! `Watch` method with [`WatchCodec`], which writes the same wire bytes directly from the
//! cached encoding: one copy (into the response buffer), no allocation. Every other method is
//! the generated server's.
//!
//! The events also reach the response without a task in between: the stream tonic polls is
//! the store's watch channel itself ([`WatchEvents`]).
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::BufMut;
use coxswain_api::v1::object_store_server::ObjectStoreServer;
use coxswain_api::v1::{WatchEvent as PbWatchEvent, WatchRequest};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::{http, Body, BoxFuture, Service, StdError};
use tonic::server::{NamedService, ServerStreamingService};
use tonic::{Request, Response, Status};

use super::{ObjectStoreService, MAX_REQUEST_BYTES};
use crate::cache::{EventType, Stored};
use crate::store::WatchEvent;

/// The largest response message (a list of many objects).
pub(super) const MAX_RESPONSE_BYTES: usize = 256 << 20;

const WATCH_PATH: &str = "/coxswain.v1.ObjectStore/Watch";

/// The `coxswain.v1.ObjectStore` service as served: the generated server, with `Watch`
/// answered through [`WatchCodec`].
#[derive(Clone)]
pub struct StoreServer {
    generated: ObjectStoreServer<ObjectStoreService>,
    service: Arc<ObjectStoreService>,
}

impl StoreServer {
    pub(super) fn new(service: ObjectStoreService) -> StoreServer {
        let service = Arc::new(service);
        StoreServer {
            generated: ObjectStoreServer::from_arc(service.clone())
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
            service,
        }
    }
}

impl NamedService for StoreServer {
    const NAME: &'static str = <ObjectStoreServer<ObjectStoreService> as NamedService>::NAME;
}

impl<B> Service<http::Request<B>> for StoreServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != WATCH_PATH {
            return self.generated.call(req);
        }
        let method = WatchMethod(self.service.clone());
        Box::pin(async move {
            // As the generated server's Watch, with the same message size limits.
            let mut grpc = tonic::server::Grpc::new(WatchCodec)
                .apply_max_message_size_config(Some(MAX_REQUEST_BYTES), Some(MAX_RESPONSE_BYTES));
            Ok(grpc.server_streaming(method, req).await)
        })
    }
}

struct WatchMethod(Arc<ObjectStoreService>);

impl ServerStreamingService<WatchRequest> for WatchMethod {
    type Response = WatchEvent;
    type ResponseStream = WatchEvents;
    type Future = BoxFuture<Response<WatchEvents>, Status>;

    fn call(&mut self, req: Request<WatchRequest>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.open_watch(&req).map(Response::new) })
    }
}

/// The events of one client watch as the store queues them; ends after the first error.
/// Counts the watch in `apiserver_registered_watchers` while it lives.
pub(super) struct WatchEvents {
    rx: mpsc::Receiver<crate::error::Result<WatchEvent>>,
    done: bool,
    sent: metrics::Counter,
    _open: OpenWatch,
}

impl WatchEvents {
    pub(super) fn new(
        rx: mpsc::Receiver<crate::error::Result<WatchEvent>>,
        resource: &'static str,
    ) -> WatchEvents {
        WatchEvents {
            rx,
            done: false,
            sent: metrics::counter!("apiserver_watch_events_total", "resource" => resource),
            _open: OpenWatch::new(resource),
        }
    }
}

impl Stream for WatchEvents {
    type Item = Result<WatchEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        Poll::Ready(match ready!(self.rx.poll_recv(cx)) {
            Some(Ok(e)) => {
                self.sent.increment(1);
                Some(Ok(e))
            }
            Some(Err(e)) => {
                self.done = true;
                Some(Err(Status::from(e)))
            }
            None => {
                self.done = true;
                None
            }
        })
    }
}

/// Counts a client watch in `apiserver_registered_watchers{resource}` while it lives.
struct OpenWatch(metrics::Gauge);

impl OpenWatch {
    fn new(resource: &'static str) -> OpenWatch {
        let g = metrics::gauge!("apiserver_registered_watchers", "resource" => resource);
        g.increment(1.0);
        OpenWatch(g)
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// A store watch event as the `coxswain.v1.WatchEvent` message (the generated service's
/// form; [`WatchCodec`] writes the same bytes without building it).
pub(super) fn to_pb(ev: WatchEvent) -> PbWatchEvent {
    match ev {
        WatchEvent::Change { typ, object } => PbWatchEvent {
            r#type: typ.as_str().to_string(),
            resource_version: object.revision.to_string(),
            object: Some(object.to_any()),
            request_id: object.request_id.as_deref().unwrap_or_default().into(),
        },
        WatchEvent::Bookmark { kind, revision } => PbWatchEvent {
            r#type: "BOOKMARK".to_string(),
            resource_version: revision.to_string(),
            object: kind.map(|k| {
                let mut o = k.empty();
                o.meta_mut().resource_version = revision.to_string();
                o.to_any()
            }),
            request_id: String::new(),
        },
    }
}

/// `Watch`'s codec: requests as prost decodes them, events encoded by [`encode_change`].
#[derive(Clone, Copy, Default)]
pub(super) struct WatchCodec;

impl Codec for WatchCodec {
    type Encode = WatchEvent;
    type Decode = WatchRequest;
    type Encoder = WatchCodec;
    type Decoder = tonic_prost::ProstDecoder<WatchRequest>;

    fn encoder(&mut self) -> WatchCodec {
        WatchCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

impl Encoder for WatchCodec {
    type Item = WatchEvent;
    type Error = Status;

    fn encode(&mut self, item: WatchEvent, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            WatchEvent::Change { typ, object } => encode_change(typ, &object, buf),
            // Rare (one per watch per bookmark interval): the message as it is.
            bookmark => to_pb(bookmark)
                .encode(buf)
                .map_err(|e| Status::internal(e.to_string()))?,
        }
        Ok(())
    }
}

/// Write the `coxswain.v1.WatchEvent` of a change, exactly as prost encodes [`to_pb`]'s
/// message (fields in tag order, empty strings left out): type = 1, object = 2 (an Any:
/// type_url = 1, value = 2), resource_version = 3, request_id = 4.
fn encode_change(typ: EventType, s: &Stored, buf: &mut impl BufMut) {
    let mut digits = [0u8; 20];
    let rv = decimal(s.revision, &mut digits);
    let type_url = s.kind.type_url_str().as_bytes();
    let value = &s.bytes[..];
    put_field(1, typ.as_str().as_bytes(), buf);
    encode_key(2, WireType::LengthDelimited, buf);
    encode_varint((field_len(1, type_url) + field_len(2, value)) as u64, buf);
    put_field(1, type_url, buf);
    put_field(2, value, buf);
    put_field(3, rv, buf);
    put_field(
        4,
        s.request_id.as_deref().unwrap_or_default().as_bytes(),
        buf,
    );
}

/// A length-delimited field (string or bytes), left out when empty as proto3 does.
fn put_field(tag: u32, value: &[u8], buf: &mut impl BufMut) {
    if value.is_empty() {
        return;
    }
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(value.len() as u64, buf);
    buf.put_slice(value);
}

fn field_len(tag: u32, value: &[u8]) -> usize {
    if value.is_empty() {
        return 0;
    }
    key_len(tag) + encoded_len_varint(value.len() as u64) + value.len()
}

/// `n` in decimal (a resourceVersion; never negative), in `buf`.
fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut v = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        // Only a corrupt revision; 19 digits and the sign still fit.
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{self, ObjectMeta};
    use coxswain_api::Object;

    fn stored(revision: i64, request_id: Option<&str>) -> Arc<Stored> {
        let pod = Object::Pod(v1::Pod {
            metadata: Some(ObjectMeta {
                name: "web-1".into(),
                namespace: "default".into(),
                labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let raw = crate::cache::with_resource_version(&pod.encode_to_vec(), revision);
        let mut s = Stored::prebuilt(&pod, raw);
        s.revision = revision;
        s.request_id = request_id.map(Arc::from);
        Arc::new(s)
    }

    fn encoded(ev: WatchEvent) -> Vec<u8> {
        let mut v = Vec::new();
        match ev {
            WatchEvent::Change { typ, object } => encode_change(typ, &object, &mut v),
            _ => unreachable!(),
        }
        v
    }

    #[test]
    fn a_change_encodes_as_the_generated_message_does() {
        for typ in [EventType::Added, EventType::Modified, EventType::Deleted] {
            for rv in [0, 7, 10, 99_999, i64::MAX] {
                for rid in [None, Some("req-1")] {
                    let ev = WatchEvent::Change {
                        typ,
                        object: stored(rv, rid),
                    };
                    let want = to_pb(ev.clone()).encode_to_vec();
                    assert_eq!(encoded(ev), want, "{typ:?} rv {rv} request id {rid:?}");
                }
            }
        }
    }

    #[test]
    fn decimal_formats_as_to_string() {
        for n in [0, 1, 9, 10, 123_456_789, i64::MAX, -1, i64::MIN] {
            let mut b = [0u8; 20];
            assert_eq!(decimal(n, &mut b), n.to_string().as_bytes());
        }
    }
}
