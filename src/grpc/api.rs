//! The service API of the runtime-free core: how a service's logic plugs
//! into the session without threads or an async runtime.
//!
//! A call is a small state object the session drives from the one-thread
//! loop, in the manner of gRPC C++'s callback reactors and pw_rpc (see
//! `docs/runtime-free-design.md`, "Service API"):
//!
//! * [`Streaming::on_message`] for each request message (client streaming
//!   and bidirectional methods), [`Streaming::on_half_close`] when the
//!   client has sent its last one;
//! * [`Streaming::poll_next`] whenever the call may send: it returns the
//!   next reply, [`Next::Pending`] (optionally after [`Ctx::wake_at`] for a
//!   timer), or [`Next::Done`] with the final status;
//! * [`Streaming::on_cancel`] if the call ends any other way (client
//!   RST_STREAM, deadline, connection gone, shutdown drain over).
//!
//! Backpressure is the pull model: the session polls a call only while the
//! call's queue of unsent replies is below [`SEND_QUEUE`] bytes, and hands it
//! the next request message only once `poll_next` said `Pending` — so a
//! client that does not read its replies stops its call's producer, and a
//! call that cannot keep up holds back the client's HTTP/2 stream window.
//! No queue grows with the client's behaviour.
//!
//! `build.rs` generates, for each service in `proto/`, a trait with one
//! method per RPC over the prost message types and a [`Service`] adapter
//! (`proto::<package>::<service>_core`); [`Router`] holds the services a
//! server serves and the session dispatches to it by `:path`. Unary methods
//! return their reply; the streaming kinds return a boxed [`Streaming`].

use bytes::Bytes;
use prost::Message;

use super::base64;
use super::message;
pub use super::status::Status;
use crate::h2::stream::PackedFields;
use crate::h2::{ErrorCode, RequestHead, Timestamp};
use crate::status::Code;

/// Unsent reply bytes a call may have queued before the session stops
/// polling it (one full DATA frame): enough to keep the connection busy,
/// small enough that a stalled reader costs little.
pub const SEND_QUEUE: usize = 16 * 1024;

/// The four RPC kinds, by request and response cardinality.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One request, one reply.
    Unary,
    /// One request, a stream of replies.
    ServerStreaming,
    /// A stream of requests, one reply.
    ClientStreaming,
    /// Streams both ways.
    Bidi,
}

impl Kind {
    /// The client sends exactly one message (a second one is a cardinality
    /// violation, UNIMPLEMENTED per grpc's `statuscodes.md`).
    pub fn one_request(self) -> bool {
        matches!(self, Kind::Unary | Kind::ServerStreaming)
    }
}

/// What a call answers when polled.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<T> {
    /// Send this reply (more may follow).
    Message(T),
    /// Nothing to send now. The call is polled again after its next request
    /// message or the half-close, once its queue drains, and at the time
    /// given to [`Ctx::wake_at`], whichever comes first.
    Pending,
    /// The call is over: send the trailers (any set by [`Ctx::set_trailer`])
    /// with this status; `Status::ok()` for success.
    Done(Status),
}

/// Why a call ended before it returned [`Next::Done`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// The stream was reset: by the client (RST_STREAM, e.g. a cancelled
    /// call), or because the connection failed (the HTTP/2 error code).
    Reset(ErrorCode),
    /// The client's `grpc-timeout` passed; it was sent DEADLINE_EXCEEDED.
    Deadline,
    /// The connection went away under the call: the server dropped it
    /// (shutdown drain over, or the connection closed).
    Closed,
}

/// Custom metadata the handler sets: initial metadata (sent with the
/// response headers) and trailers (sent with the status).
#[derive(Debug, Default)]
pub struct ResponseMeta {
    /// Initial metadata, encoded.
    pub(crate) headers: PackedFields,
    /// Trailing metadata, encoded.
    pub(crate) trailers: PackedFields,
    /// The response headers went out: initial metadata can no longer change.
    pub(crate) headers_sent: bool,
}

/// A call's window on the session while one of its hooks runs: the time,
/// the request metadata (when the call starts), the response metadata, the
/// call's timer.
pub struct Ctx<'a> {
    now: Timestamp,
    draining: bool,
    request: Option<&'a RequestHead>,
    wake: &'a mut Option<Timestamp>,
    meta: &'a mut ResponseMeta,
}

impl<'a> Ctx<'a> {
    /// The context for one hook (the session builds these).
    pub(crate) fn new(
        now: Timestamp,
        draining: bool,
        request: Option<&'a RequestHead>,
        wake: &'a mut Option<Timestamp>,
        meta: &'a mut ResponseMeta,
    ) -> Ctx<'a> {
        Ctx {
            now,
            draining,
            request,
            wake,
            meta,
        }
    }

    /// The current time, as the driver told the session (a timestamp on the
    /// driver's clock; only differences mean something).
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Asks to be polled again at `at` (the earliest request wins).
    pub fn wake_at(&mut self, at: Timestamp) {
        *self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    /// Whether the server is shutting down: long-lived calls should finish.
    /// (Every call is polled once when the shutdown starts.)
    pub fn draining(&self) -> bool {
        self.draining
    }

    /// A request header (custom metadata included) by lower-case name; only
    /// while the call starts (`None` in later hooks: copy what you need).
    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        self.request?.header(name.as_bytes())
    }

    /// A binary (`-bin`) request header, base64-decoded; `None` if absent
    /// or not valid base64.
    pub fn request_header_bin(&self, name: &str) -> Option<Vec<u8>> {
        base64::decode(self.request_header(name)?)
    }

    /// Every request header in order (custom metadata plus the reserved
    /// gRPC and HTTP fields), while the call starts.
    pub fn request_headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.request.into_iter().flat_map(RequestHead::fields)
    }

    /// Adds initial metadata, sent with the response headers. A `-bin` key's
    /// value is base64-encoded for the wire; any other value must be
    /// printable ASCII. Fails for a reserved or malformed name, a bad value,
    /// or once the headers went out (after the first reply).
    pub fn set_header(&mut self, name: &str, value: &[u8]) -> Result<(), Status> {
        if self.meta.headers_sent {
            return Err(Status::new(
                Code::Internal,
                "initial metadata set after the response headers were sent",
            ));
        }
        push_metadata(&mut self.meta.headers, name, value)
    }

    /// Adds trailing metadata, sent with the status (same rules as
    /// [`Ctx::set_header`]).
    pub fn set_trailer(&mut self, name: &str, value: &[u8]) -> Result<(), Status> {
        push_metadata(&mut self.meta.trailers, name, value)
    }
}

/// Checks a custom metadata entry (gRPC PROTOCOL-HTTP2.md, "Custom-Metadata")
/// and stores it wire-ready.
fn push_metadata(into: &mut PackedFields, name: &str, value: &[u8]) -> Result<(), Status> {
    // Names that are not the application's: gRPC's own, and fields HTTP/2
    // forbids or the session sets itself.
    const RESERVED: [&str; 7] = [
        "content-type",
        "te",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ];
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'_' | b'-' | b'.'))
        && !name.starts_with("grpc-")
        && !RESERVED.contains(&name);
    if !valid_name {
        return Err(Status::new(
            Code::Internal,
            format!("invalid or reserved metadata name {name:?}"),
        ));
    }
    if name.ends_with("-bin") {
        into.push(name.as_bytes(), &base64::encode(value));
    } else if value.iter().all(|b| (0x20..=0x7E).contains(b)) {
        into.push(name.as_bytes(), value);
    } else {
        return Err(Status::new(
            Code::Internal,
            format!("metadata {name:?}: value is not printable ASCII (use a -bin key)"),
        ));
    }
    Ok(())
}

/// A streaming call's handler, over the prost message types. `Req` is `()`
/// for server-streaming methods (the one request went to the method that
/// created the handler).
pub trait Streaming<Req, Resp> {
    /// One request message (client-streaming and bidirectional methods).
    /// An error ends the call with that status.
    fn on_message(&mut self, ctx: &mut Ctx<'_>, request: Req) -> Result<(), Status> {
        let _ = (ctx, request);
        Ok(())
    }

    /// The client sent its last message.
    fn on_half_close(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Status> {
        let _ = ctx;
        Ok(())
    }

    /// The call may send: the next reply, `Pending`, or `Done`.
    fn poll_next(&mut self, ctx: &mut Ctx<'_>) -> Next<Resp>;

    /// The call ended without `Done` (see [`Cancel`]); no hook runs after.
    fn on_cancel(&mut self, reason: Cancel) {
        let _ = reason;
    }
}

/// A call as the session drives it: request messages and replies as
/// encoded bytes. The generated adapters implement it over [`Streaming`];
/// a service that works on raw bytes (reflection) implements it directly.
pub trait RawCall {
    /// One request message (protobuf bytes, without the 5-byte prefix).
    fn on_message(&mut self, ctx: &mut Ctx<'_>, request: Bytes) -> Result<(), Status>;
    /// The client sent its last message.
    fn on_half_close(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Status>;
    /// The next reply, framed (see [`message::encode`]).
    fn poll_next(&mut self, ctx: &mut Ctx<'_>) -> Next<Bytes>;
    /// The call ended without `Done`.
    fn on_cancel(&mut self, reason: Cancel);
}

/// A service the [`Router`] can dispatch to.
pub trait Service {
    /// The fully-qualified name, `package.Service`.
    fn name(&self) -> &'static str;
    /// The methods: name and kind. [`Service::start`] gets the index.
    fn methods(&self) -> &'static [(&'static str, Kind)];
    /// Starts a call of method `method`. `request` is the request message
    /// of a unary or server-streaming method (the session has checked
    /// there was exactly one), `None` for the streaming-request kinds. An
    /// error fails the call with that status at once.
    fn start(
        &self,
        method: usize,
        ctx: &mut Ctx<'_>,
        request: Option<Bytes>,
    ) -> Result<Box<dyn RawCall>, Status>;
}

/// The services a server serves, by name. Built once by the driver and
/// shared by every connection.
#[derive(Default)]
pub struct Router {
    services: Vec<Box<dyn Service>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Router {
    /// A router serving nothing yet.
    pub fn new() -> Router {
        Router::default()
    }

    /// Serves `service` (a later service with the same name is never reached).
    pub fn add(&mut self, service: impl Service + 'static) -> &mut Router {
        self.add_boxed(Box::new(service))
    }

    /// Serves an already boxed `service`.
    pub fn add_boxed(&mut self, service: Box<dyn Service>) -> &mut Router {
        self.services.push(service);
        self
    }

    /// The names of the services served, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.services.iter().map(|s| s.name())
    }

    /// The (service, method) indexes and kind for a `:path` of the form
    /// `/package.Service/Method`, or `None` (→ UNIMPLEMENTED).
    pub fn route(&self, path: &[u8]) -> Option<(usize, usize, Kind)> {
        let (service, method) = std::str::from_utf8(path)
            .ok()?
            .strip_prefix('/')?
            .split_once('/')?;
        let (si, s) = self
            .services
            .iter()
            .enumerate()
            .find(|(_, s)| s.name() == service)?;
        let (mi, (_, kind)) = s
            .methods()
            .iter()
            .enumerate()
            .find(|(_, (name, _))| *name == method)?;
        Some((si, mi, *kind))
    }

    /// Starts a call routed by [`Router::route`].
    pub(crate) fn start(
        &self,
        service: usize,
        method: usize,
        ctx: &mut Ctx<'_>,
        request: Option<Bytes>,
    ) -> Result<Box<dyn RawCall>, Status> {
        match self.services.get(service) {
            Some(s) => s.start(method, ctx, request),
            None => Err(unknown_method()),
        }
    }
}

/// The status for a method a service does not have.
pub fn unknown_method() -> Status {
    Status::new(crate::service::UNKNOWN_METHOD, "unknown method")
}

/// Decodes a request message (`DECODE_ERROR` with prost's reason if it is
/// not a valid `M`).
pub fn decode<M: Message + Default>(request: Bytes) -> Result<M, Status> {
    M::decode(request).map_err(|e| Status::new(crate::service::DECODE_ERROR, e.to_string()))
}

/// The request of a one-request method; the session always passes one.
fn one(request: Option<Bytes>) -> Result<Bytes, Status> {
    request.ok_or_else(|| Status::new(Code::Internal, "Missing request message."))
}

/// Adapter for a unary method (used by the generated code): decodes the
/// request, runs `handler`, and replies once.
pub fn unary<Req: Message + Default, Resp: Message>(
    request: Option<Bytes>,
    handler: impl FnOnce(Req) -> Result<Resp, Status>,
) -> Result<Box<dyn RawCall>, Status> {
    let reply = handler(decode(one(request)?)?)?;
    Ok(Box::new(Once(Some(message::encode(&reply)))))
}

/// Adapter for a server-streaming method (used by the generated code).
pub fn server_streaming<Req: Message + Default, Resp: Message + 'static>(
    request: Option<Bytes>,
    handler: impl FnOnce(Req) -> Result<Box<dyn Streaming<(), Resp>>, Status>,
) -> Result<Box<dyn RawCall>, Status> {
    let call = handler(decode(one(request)?)?)?;
    Ok(Box::new(Typed(call)))
}

/// Adapter for a client-streaming or bidirectional method (used by the
/// generated code).
pub fn streaming<Req: Message + Default + 'static, Resp: Message + 'static>(
    call: Result<Box<dyn Streaming<Req, Resp>>, Status>,
) -> Result<Box<dyn RawCall>, Status> {
    Ok(Box::new(Typed(call?)))
}

/// A unary call's one reply, already encoded.
struct Once(Option<Bytes>);

impl RawCall for Once {
    fn on_message(&mut self, _: &mut Ctx<'_>, _: Bytes) -> Result<(), Status> {
        Ok(())
    }

    fn on_half_close(&mut self, _: &mut Ctx<'_>) -> Result<(), Status> {
        Ok(())
    }

    fn poll_next(&mut self, _: &mut Ctx<'_>) -> Next<Bytes> {
        match self.0.take() {
            Some(reply) => Next::Message(reply),
            None => Next::Done(Status::ok()),
        }
    }

    fn on_cancel(&mut self, _: Cancel) {}
}

/// A [`Streaming`] handler seen as a [`RawCall`]: decodes requests and
/// encodes replies.
struct Typed<Req, Resp>(Box<dyn Streaming<Req, Resp>>);

impl<Req: Message + Default, Resp: Message> RawCall for Typed<Req, Resp> {
    fn on_message(&mut self, ctx: &mut Ctx<'_>, request: Bytes) -> Result<(), Status> {
        self.0.on_message(ctx, decode(request)?)
    }

    fn on_half_close(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Status> {
        self.0.on_half_close(ctx)
    }

    fn poll_next(&mut self, ctx: &mut Ctx<'_>) -> Next<Bytes> {
        match self.0.poll_next(ctx) {
            Next::Message(reply) => Next::Message(message::encode(&reply)),
            Next::Pending => Next::Pending,
            Next::Done(status) => Next::Done(status),
        }
    }

    fn on_cancel(&mut self, reason: Cancel) {
        self.0.on_cancel(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_rules() {
        let mut meta = ResponseMeta::default();
        let mut wake = None;
        let mut ctx = Ctx::new(Timestamp::ZERO, false, None, &mut wake, &mut meta);
        assert!(ctx.set_header("x-ok", b"plain value").is_ok());
        assert!(ctx.set_trailer("x-data-bin", &[0, 0xFF]).is_ok());
        for bad in ["", "X-Upper", "grpc-status", "content-type", ":path", "a b"] {
            assert!(ctx.set_header(bad, b"v").is_err(), "{bad:?}");
        }
        assert!(ctx.set_header("x-text", b"line\nbreak").is_err());
        ctx.wake_at(Timestamp::from_secs(5));
        ctx.wake_at(Timestamp::from_secs(3));
        ctx.wake_at(Timestamp::from_secs(4));
        assert_eq!(wake, Some(Timestamp::from_secs(3)));
        assert_eq!(
            meta.trailers.iter().collect::<Vec<_>>(),
            [(&b"x-data-bin"[..], &b"AP8"[..])]
        );
        meta.headers_sent = true;
        let mut ctx = Ctx::new(Timestamp::ZERO, false, None, &mut wake, &mut meta);
        assert!(ctx.set_header("x-late", b"v").is_err());
    }
}
