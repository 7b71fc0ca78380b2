//! One unary call to etcd whose request is a single HTTP/2 DATA frame that ends the stream.
//!
//! tonic's generated client sends a unary request as a body that learns it is over only when
//! polled again after its message, so hyper sends the message's DATA frame and then an empty
//! DATA frame carrying END_STREAM: two frames for etcd to read and account per request, and
//! tonic's streaming encoder around one message. A create is one Txn, so the Txn goes through
//! here: the message is encoded once into a gRPC frame (no compression: flag 0, length, bytes)
//! and sent as a body that says it is over once that frame is taken, so hyper sets END_STREAM on
//! the message's own frame. Everything else is tonic's: the same channel (connection, TLS,
//! balancing, reconnects), the same headers (`te: trailers`, `content-type: application/grpc`,
//! the channel's user agent), and the response decoded by tonic's own `Streaming` exactly as its
//! unary client does (a trailers-only status, the message, then the status in the trailers).
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderValue, CONTENT_TYPE, TE};
use http_body::Frame;
use prost::Message;
use tonic::codec::{Codec, Streaming};
use tonic::codegen::Service;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// A request body of one frame that is over once the frame is taken.
struct OneFrame(Option<Bytes>);

impl http_body::Body for OneFrame {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
    // No exact size_hint: hyper would add a content-length header that tonic's requests do
    // not carry.
}

/// `req` to the gRPC method at `path` (`/package.Service/Method`, parsed once by the caller) over
/// `channel`, answered with one `Resp`. Errors are tonic's statuses for the same failures its
/// generated client reports.
pub(super) async fn call<Req, Resp>(
    channel: &mut Channel,
    path: &http::Uri,
    req: &Req,
    max_message: usize,
) -> Result<Resp, Status>
where
    Req: Message + Send + 'static,
    Resp: Message + Default + Send + 'static,
{
    let len = req.encoded_len();
    if len > max_message {
        return Err(Status::out_of_range(format!(
            "Error, encoded message length too large: found {len} bytes, the limit is: {max_message} bytes"
        )));
    }
    let mut frame = BytesMut::with_capacity(5 + len);
    frame.put_u8(0);
    frame.put_u32(len as u32);
    req.encode(&mut frame)
        .map_err(|e| Status::internal(format!("encoding {path}: {e}")))?;
    // Built from parts already parsed: the request builder would parse every header again.
    let mut request = http::Request::new(tonic::body::Body::new(OneFrame(Some(frame.freeze()))));
    *request.method_mut() = http::Method::POST;
    *request.version_mut() = http::Version::HTTP_2;
    *request.uri_mut() = path.clone();
    let headers = request.headers_mut();
    headers.insert(TE, HeaderValue::from_static("trailers"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .map_err(|e| Status::unknown(format!("Service was not ready: {e}")))?;
    let response = channel
        .call(request)
        .await
        .map_err(|e| Status::from_error(e.into()))?;
    let (parts, body) = response.into_parts();
    // A trailers-only answer: the status is in the headers and no message follows.
    if let Some(status) = Status::from_header_map(&parts.headers) {
        if status.code() != Code::Ok {
            return Err(status);
        }
        return Err(Status::internal("Missing response message."));
    }
    let decoder = tonic_prost::ProstCodec::<Req, Resp>::default().decoder();
    let mut stream = Streaming::new_response(decoder, body, parts.status, None, Some(max_message));
    let message = stream
        .message()
        .await?
        .ok_or_else(|| Status::internal("Missing response message."))?;
    // The status in the trailers (a failure there fails the call, as in tonic's unary).
    stream.trailers().await?;
    Ok(message)
}
