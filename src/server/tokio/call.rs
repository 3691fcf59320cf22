//! One call, from hyper's request to the routed tonic service and back:
//! content-type check, `grpc-timeout` deadline, the request-size limit on
//! the incoming stream, in-flight accounting for drain and idle timeout, and
//! the end of health `Watch` streams when draining starts.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::Frame;
use hyper::body::Incoming;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderMap, HeaderValue, Request, Response};

use super::connection::ConnState;
use super::Shared;
use crate::grpc::budget::Budget;

/// A request body that checks each gRPC message's length prefix against
/// `max-message-size` as the bytes arrive, and fails the call with
/// RESOURCE_EXHAUSTED before buffering an oversized message. (tonic's own
/// check, kept as a second line, would answer OUT_OF_RANGE.)
///
/// It also holds the memory budget ([`crate::grpc::budget`]): each message
/// reserves its announced size from the shared pool when its prefix
/// arrives (the previous message's reservation is given back then, or when
/// the body is dropped); when the pool cannot cover it the call fails with
/// RESOURCE_EXHAUSTED and nothing more is polled, so h2 withholds the
/// window instead of buffering. h2's own buffers are bounded by the
/// budget's windows.
pub(super) struct LimitedBody {
    inner: Incoming,
    /// Largest message allowed, in bytes after the 5-byte prefix.
    limit: usize,
    /// Where the message framing is at in the bytes seen so far.
    framing: Framing,
    /// The method takes one request message (unary, server streaming): a
    /// second one fails the call (see `crate::service::CARDINALITY`).
    one_message: bool,
    /// Set after a check failed: the body yields nothing more.
    failed: bool,
    /// The server's shared pool.
    budget: Budget,
    /// Messages up to this size (the budget's window) are small: they may
    /// use the whole pool, larger ones only part of it.
    small: usize,
    /// Bytes this body holds reserved in it.
    reserved: usize,
}

impl LimitedBody {
    fn new(
        inner: Incoming,
        limit: usize,
        one_message: bool,
        budget: Budget,
        small: usize,
    ) -> LimitedBody {
        LimitedBody {
            inner,
            limit,
            framing: Framing::default(),
            one_message,
            failed: false,
            budget,
            small,
            reserved: 0,
        }
    }
}

impl Drop for LimitedBody {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

/// Tracks gRPC message framing (1 flag byte, 4-byte big-endian length,
/// payload) across arbitrarily split DATA chunks.
#[derive(Default)]
struct Framing {
    /// The current message's prefix, while it is being read.
    prefix: [u8; 5],
    /// Prefix bytes read so far (0..=4 between chunks).
    prefix_len: usize,
    /// Payload bytes of the current message still to come.
    remaining: usize,
    /// Message prefixes seen so far.
    messages: usize,
    /// Sizes (prefix included) of the messages whose prefix completed in
    /// the last [`Framing::check`].
    announced: usize,
}

impl Framing {
    /// Follows the framing through one chunk; returns the length of the
    /// first message announced as longer than `limit`, if any.
    fn check(&mut self, mut chunk: &[u8], limit: usize) -> Option<usize> {
        self.announced = 0;
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(chunk.len());
                self.remaining -= take;
                chunk = chunk.get(take..).unwrap_or_default();
                continue;
            }
            let take = (5 - self.prefix_len).min(chunk.len());
            let (head, rest) = chunk.split_at(take);
            if let Some(dst) = self.prefix.get_mut(self.prefix_len..self.prefix_len + take) {
                dst.copy_from_slice(head);
            }
            self.prefix_len += take;
            chunk = rest;
            if self.prefix_len == 5 {
                self.prefix_len = 0;
                self.messages += 1;
                let [_flag, a, b, c, d] = self.prefix;
                let len = u32::from_be_bytes([a, b, c, d]) as usize;
                if len > limit {
                    return Some(len);
                }
                self.announced += len + 5;
                self.remaining = len;
            }
        }
        None
    }
}

impl http_body::Body for LimitedBody {
    type Data = tonic::codegen::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(too_large) = frame
            .data_ref()
            .and_then(|data| this.framing.check(data, this.limit))
        {
            this.failed = true;
            let status = tonic::Status::resource_exhausted(format!(
                "message of {too_large} bytes is over the limit of {} bytes",
                this.limit
            ));
            return Poll::Ready(Some(Err(status.into())));
        }
        if this.one_message && this.framing.messages > 1 {
            this.failed = true;
            let status = tonic::Status::new(
                tonic::Code::from_i32(crate::service::CARDINALITY as i32),
                crate::service::CARDINALITY_MESSAGE,
            );
            return Poll::Ready(Some(Err(status.into())));
        }
        if this.framing.announced > 0 {
            // A new message: the previous one has been handed on.
            this.budget.release(this.reserved);
            this.reserved = 0;
            let n = this.framing.announced;
            let reserved = if n <= this.small {
                this.budget.try_reserve(n)
            } else {
                this.budget.try_reserve_large(n)
            };
            if !reserved {
                this.failed = true;
                let status = tonic::Status::resource_exhausted(
                    "server memory budget exhausted; retry later",
                );
                return Poll::Ready(Some(Err(status.into())));
            }
            this.reserved = this.framing.announced;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
/// The hyper service of one connection: checks, deadline and accounting
/// around [`Routes::call`].
pub(super) struct CallService {
    pub(super) shared: Arc<Shared>,
    pub(super) conn: Arc<ConnState>,
    /// Turns true when draining starts (health Watch streams then end).
    pub(super) stop: watch::Receiver<bool>,
}

/// A stream error hyper turns into RST_STREAM with the error's reason.
type StreamError = Box<dyn std::error::Error + Send + Sync>;

/// The health Watch method: its stream ends with NOT_SERVING when draining
/// starts, as in the runtime-free flavour, instead of holding the drain open.
const HEALTH_WATCH: &str = "/grpc.health.v1.Health/Watch";

impl hyper::service::Service<Request<Incoming>> for CallService {
    type Response = Response<CallBody>;
    type Error = StreamError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<CallBody>, StreamError>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // RFC 9113 §8.2.1, where hyper's h2 does not check: a value that starts or
        // ends with whitespace makes the request malformed, a stream error
        // PROTOCOL_ERROR (§8.1.1). hyper resets the stream with the h2 reason
        // found in the service's error.
        if request
            .headers()
            .values()
            .any(|v| crate::service::malformed_field_value(v.as_bytes()))
        {
            let reset: StreamError = Box::new(h2::Error::from(h2::Reason::PROTOCOL_ERROR));
            return Box::pin(async move { Err(reset) });
        }
        let guard = CallGuard::new(&self.shared.calls, &self.conn);
        let refusal = if request.method() != http::Method::POST {
            Some(not_post())
        } else if !is_grpc(request.headers()) {
            Some(unsupported_media_type())
        } else {
            None
        };
        if let Some(response) = refusal {
            return Box::pin(async move { Ok(response.map(|b| CallBody::new(b, guard, None))) });
        }
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| crate::grpc::timeout::parse(v.as_bytes()).ok())
            .and_then(|timeout| Instant::now().checked_add(timeout));
        let drain = (request.uri().path() == HEALTH_WATCH).then(|| {
            let mut stop = self.stop.clone();
            let drained: Drain = Box::pin(async move {
                // (A dropped sender also means "stop".)
                let _ = stop.wait_for(|stopping| *stopping).await;
            });
            drained
        });
        let limit = self.shared.config.max_message_size;
        let one_message = crate::proto::ONE_REQUEST_PATHS.contains(&request.uri().path());
        let budget = self.shared.budget.clone();
        let small = self.shared.window;
        let call = self
            .shared
            .routes
            .call(request.map(|body| LimitedBody::new(body, limit, one_message, budget, small)));
        Box::pin(async move {
            let response = match deadline {
                None => call.await,
                Some(at) => {
                    tokio::select! {
                        response = call => response,
                        _ = tokio::time::sleep_until(at) => deadline_exceeded(),
                    }
                }
            };
            // Answering after the deadline would tell the client a lie.
            let response = match deadline {
                Some(at) if Instant::now() >= at => deadline_exceeded(),
                _ => response,
            };
            let mut response = response.map(|body| CallBody::new(body, guard, deadline));
            response.body_mut().drain = drain;
            Ok(response)
        })
    }
}

/// True for `application/grpc` and its `+proto` / `;params` variants.
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.as_bytes().strip_prefix(b"application/grpc"))
        .is_some_and(|rest| matches!(rest.first(), None | Some(b'+' | b';')))
}

/// HTTP 415 with a short text body, as the gRPC spec asks for a request that
/// is not gRPC (plus `grpc-status: 13` for gRPC clients that read only that).
fn unsupported_media_type() -> Response<Body> {
    let mut response = text_response(
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        crate::service::NOT_GRPC_BODY,
    );
    let status = tonic::Status::internal("content-type must be application/grpc");
    // The status's own headers (grpc-status, grpc-message) are valid by construction.
    let _ = status.add_header(response.headers_mut());
    response
}

/// HTTP 405 with `allow: POST` (RFC 9110 §15.5.6) and a short text body, for
/// a request with any method but POST: a gRPC call is always a POST.
fn not_post() -> Response<Body> {
    let mut response = text_response(
        http::StatusCode::METHOD_NOT_ALLOWED,
        crate::service::NOT_POST_BODY,
    );
    response
        .headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// A complete `text/plain` response.
fn text_response(status: http::StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::new(String::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn deadline_exceeded() -> Response<Body> {
    tonic::Status::deadline_exceeded("deadline exceeded").into_http()
}

/// Counts a call in flight, globally (drain report) and on its connection
/// (idle timeout), until the response body is finished or dropped.
struct CallGuard {
    calls: Arc<AtomicUsize>,
    conn: Arc<ConnState>,
}

impl CallGuard {
    fn new(calls: &Arc<AtomicUsize>, conn: &Arc<ConnState>) -> CallGuard {
        calls.fetch_add(1, Ordering::AcqRel);
        conn.active.fetch_add(1, Ordering::AcqRel);
        CallGuard {
            calls: Arc::clone(calls),
            conn: Arc::clone(conn),
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.calls.fetch_sub(1, Ordering::AcqRel);
        if self.conn.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            let now = self.conn.elapsed_ms();
            self.conn.idle_since_ms.store(now, Ordering::Release);
        }
    }
}

/// Resolves when draining starts.
type Drain = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A response body that keeps its call counted until it ends, ends a
/// stream that outlives its `grpc-timeout` with DEADLINE_EXCEEDED trailers,
/// and (health Watch) ends with OK once draining started and the
/// NOT_SERVING update went out.
pub(super) struct CallBody {
    inner: Body,
    guard: Option<CallGuard>,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Set for health Watch: resolves when draining starts.
    drain: Option<Drain>,
    /// Draining started: forward what the stream has ready, then end.
    draining: bool,
}

impl CallBody {
    fn new(inner: Body, guard: CallGuard, deadline: Option<Instant>) -> CallBody {
        CallBody {
            inner,
            guard: Some(guard),
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            drain: None,
            draining: false,
        }
    }
}

impl http_body::Body for CallBody {
    type Data = tonic::codegen::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.guard.is_none() {
            return Poll::Ready(None);
        }
        let expired = match this.deadline.as_mut() {
            Some(sleep) => sleep.as_mut().poll(cx).is_ready(),
            None => false,
        };
        if expired {
            this.guard = None;
            let mut trailers = HeaderMap::new();
            trailers.insert(
                "grpc-status",
                HeaderValue::from(tonic::Code::DeadlineExceeded as i32),
            );
            trailers.insert(
                "grpc-message",
                HeaderValue::from_static("deadline exceeded"),
            );
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        if let Some(drain) = this.drain.as_mut() {
            if drain.as_mut().poll(cx).is_ready() {
                this.drain = None;
                this.draining = true;
            }
        }
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        match frame {
            Poll::Ready(None) => this.guard = None,
            // Health was set NOT_SERVING before draining started, so that
            // update is ready now; once nothing more is, the Watch ends OK.
            Poll::Pending if this.draining => {
                this.guard = None;
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from(tonic::Code::Ok as i32));
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.guard.is_none() || self.inner.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let check = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(v));
            is_grpc(&h)
        };
        assert!(check("application/grpc"));
        assert!(check("application/grpc+proto"));
        assert!(check("application/grpc;charset=utf-8"));
        assert!(!check("application/grpcx"));
        assert!(!check("application/json"));
        assert!(!is_grpc(&HeaderMap::new()));
    }

    fn message(len: u32) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&len.to_be_bytes());
        m.resize(5 + len as usize, b'x');
        m
    }

    #[test]
    fn framing_allows_messages_up_to_the_limit() {
        let mut framing = Framing::default();
        let mut stream = message(10);
        stream.extend(message(0));
        stream.extend(message(10));
        assert_eq!(framing.check(&stream, 10), None);
        assert_eq!((framing.prefix_len, framing.remaining), (0, 0));
    }

    #[test]
    fn framing_catches_an_oversized_prefix_split_across_chunks() {
        let mut stream = message(4);
        stream.extend_from_slice(&[0, 0, 0, 0x01, 0x00]); // announces 256 bytes
        for split in 0..stream.len() {
            let mut framing = Framing::default();
            let (a, b) = stream.split_at(split);
            let found = framing.check(a, 255).or_else(|| framing.check(b, 255));
            assert_eq!(found, Some(256), "split at {split}");
        }
        // Byte by byte as well.
        let mut framing = Framing::default();
        let found = stream.chunks(1).find_map(|c| framing.check(c, 255));
        assert_eq!(found, Some(256));
    }
}
