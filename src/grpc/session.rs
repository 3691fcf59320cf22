//! One gRPC connection: an [`h2::Connection`](crate::h2::Connection) plus the
//! state of each call on it, with the same `handle_*` / `poll_*` shape.
//!
//! The driver feeds bytes and time in and takes bytes and the next deadline
//! out; the session turns HTTP/2 request events into calls, routes them by
//! `:path` to [`services`](super::services) and writes each response. Where a
//! request enters: [`Session::handle_input`] → `on_headers` (checks and
//! routing) → `on_data` (message decoding, bounded per stream) → `finish`
//! (the reply).
//!
//! Answers for bad requests follow tonic 0.14, so both server flavours agree:
//!
//! | request | answer |
//! | --- | --- |
//! | `:method` not POST | HTTP 405, short `text/plain` body |
//! | `content-type` not `application/grpc[+…;…]` | HTTP 415, short `text/plain` body |
//! | `grpc-encoding` other than `identity` | UNIMPLEMENTED + `grpc-accept-encoding: identity` |
//! | unknown `:path` | UNIMPLEMENTED |
//! | message over `max_message_size` | [`crate::service::TOO_LARGE`] (decided from the prefix) |
//! | compressed flag set | INTERNAL |
//! | unary request with no message | INTERNAL "Missing request message." |
//! | unary request with several messages | the first is answered; the others must decode (tonic drains them) |
//! | request cut mid-message | INTERNAL "Unexpected EOF decoding stream." |
//! | undecodable protobuf / bad UTF-8 | [`crate::service::DECODE_ERROR`] |
//! | request incomplete at its `grpc-timeout` | DEADLINE_EXCEEDED "Timeout expired" |
//! | malformed `grpc-timeout` | ignored (no deadline) |
//!
//! Errors before any reply message use one Trailers-Only HEADERS frame.

use std::time::Instant;

use bytes::Bytes;

use super::message::{self, Decoder};
use super::services::{self, Method};
use super::status::{Status, CONTENT_TYPE};
use super::timeout;
use crate::config::Config;
use crate::h2::{Connection, Event, Limits, RequestHead};
use crate::proto::health::health_check_response::ServingStatus;
use crate::status::Code;

/// Body of the 405 answer to a non-POST request (e.g. a browser or `curl`).
pub const NOT_POST_BODY: &str = "this is a gRPC server; use a gRPC client (method must be POST)\n";
/// Body of the 415 answer to a request that is not `application/grpc`.
pub const NOT_GRPC_BODY: &str =
    "this is a gRPC server; use a gRPC client (content-type must be application/grpc)\n";

/// One call in progress.
#[derive(Debug)]
struct Call {
    /// Its HTTP/2 stream.
    id: u32,
    /// What it asked for.
    method: Method,
    /// Reassembles request messages; holds at most one bounded message.
    decoder: Decoder,
    /// Unary calls: the first request message, answered when the request ends.
    first: Option<Bytes>,
    /// From `grpc-timeout`: when the call fails with DEADLINE_EXCEEDED.
    deadline: Option<Instant>,
    /// Health/Watch: the response HEADERS went out and the stream stays open
    /// for status changes.
    watching: bool,
}

/// A gRPC server connection: HTTP/2 plus calls. Owns no socket and reads no clock.
#[derive(Debug)]
pub struct Session {
    /// The HTTP/2 core that frames everything.
    conn: Connection,
    /// Calls whose answer is not finished; few (bounded by
    /// max-concurrent-streams), so a Vec beats a map.
    calls: Vec<Call>,
    /// The request message bound from the configuration.
    max_message_size: usize,
    /// Health reported for "" and `echo.Echo`; false once shutdown started.
    serving: bool,
}

impl Session {
    /// A new server connection; the core queues our SETTINGS at once.
    pub fn new(config: &Config, now: Instant) -> Session {
        Session {
            conn: Connection::new(Limits::from_config(config), now),
            calls: Vec::new(),
            max_message_size: config.max_message_size,
            serving: true,
        }
    }

    /// Feeds bytes read from the socket.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        self.conn.handle_input(bytes, now);
        self.process_events(now);
    }

    /// The peer closed its sending side (read returned 0).
    pub fn handle_read_closed(&mut self, now: Instant) {
        self.conn.handle_read_closed();
        self.process_events(now);
    }

    /// Runs the timers due at `now`: the core's (handshake, idle, keepalive)
    /// and call deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now);
        self.process_events(now);
        let mut i = 0;
        while let Some(call) = self.calls.get(i) {
            if call.deadline.is_some_and(|d| d <= now) {
                let call = self.calls.swap_remove(i);
                let status = Status::new(crate::service::DEADLINE, "Timeout expired");
                if call.watching {
                    self.send_status(call.id, &status);
                } else {
                    self.send_error(call.id, &status);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Appends the bytes to write to the socket.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.conn.poll_transmit(out);
    }

    /// The earliest instant [`Session::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .iter()
            .filter_map(|c| c.deadline)
            .chain(self.conn.poll_timeout())
            .min()
    }

    /// False while too much output is unsent: stop reading until it drains.
    pub fn wants_input(&self) -> bool {
        self.conn.wants_input()
    }

    /// Nothing more will happen: flush what is left and close the socket.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Calls not yet answered (counted as abandoned if shutdown cuts them off).
    pub fn open_calls(&self) -> usize {
        self.calls.len()
    }

    /// Graceful shutdown: health turns NOT_SERVING (watchers are told, then
    /// their calls finish), GOAWAY goes out, open calls may finish.
    pub fn shutdown(&mut self) {
        self.serving = false;
        let watchers: Vec<u32> = self.calls.iter().filter(|c| c.watching).map(|c| c.id).collect();
        self.calls.retain(|c| !c.watching);
        for id in watchers {
            let sent = self
                .conn
                .send_data(id, services::health_response(ServingStatus::NotServing), false);
            if sent.is_ok() {
                self.send_status(id, &Status::ok());
            }
        }
        self.conn.shutdown();
    }

    /// Takes every event the core has and acts on it.
    fn process_events(&mut self, now: Instant) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Headers { id, head, end_stream } => self.on_headers(id, &head, end_stream, now),
                Event::Data { id, data, end_stream } => self.on_data(id, data, end_stream),
                Event::Trailers { id } => self.on_end(id),
                Event::Reset { id, .. } => self.calls.retain(|c| c.id != id),
            }
        }
    }

    /// A new request: check it is gRPC, route it, start the call.
    fn on_headers(&mut self, id: u32, head: &RequestHead, end_stream: bool, now: Instant) {
        if head.method() != b"POST" {
            return self.send_http_error(id, 405, NOT_POST_BODY);
        }
        if !is_grpc_content_type(head.header(b"content-type")) {
            return self.send_http_error(id, 415, NOT_GRPC_BODY);
        }
        if let Some(encoding) = head.header(b"grpc-encoding").filter(|e| *e != b"identity") {
            let status = Status::new(
                Code::Unimplemented,
                format!(
                    "Content is compressed with `{}` which isn't supported",
                    String::from_utf8_lossy(encoding)
                ),
            );
            return self.send_trailers_only(id, &status, &[(b"grpc-accept-encoding", b"identity")]);
        }
        let Some(method) = Method::route(head.path()) else {
            let status = Status::new(
                crate::service::UNKNOWN_METHOD,
                format!("unknown method {}", String::from_utf8_lossy(head.path())),
            );
            return self.send_error(id, &status);
        };
        let deadline = head
            .header(b"grpc-timeout")
            .and_then(|v| timeout::parse(v).ok())
            .and_then(|d| now.checked_add(d));
        self.calls.push(Call {
            id,
            method,
            decoder: Decoder::new(self.max_message_size),
            first: None,
            deadline,
            watching: false,
        });
        if end_stream {
            self.on_end(id);
        }
    }

    /// Request body bytes: decode the messages they complete.
    fn on_data(&mut self, id: u32, data: Bytes, end_stream: bool) {
        let Some(call) = self.calls.iter_mut().find(|c| c.id == id) else {
            // Already answered (an early error) or reset: the core handled
            // flow control, the bytes are dropped.
            return;
        };
        call.decoder.push(data);
        let mut failed = None;
        let mut watch = None;
        loop {
            match call.decoder.next() {
                Ok(None) => break,
                Ok(Some(msg)) => match call.method {
                    // A Watch that is already running ignores further messages.
                    Method::HealthWatch if call.watching => {}
                    Method::HealthWatch => {
                        watch = Some(msg);
                        break;
                    }
                    _ if call.first.is_none() => call.first = Some(msg),
                    // tonic drains extra messages of a unary call through the
                    // decoder: they are dropped, but must decode.
                    method => {
                        if let Err(status) = call_unary(method, msg, true) {
                            failed = Some(status);
                            break;
                        }
                    }
                },
                Err(status) => {
                    failed = Some(status);
                    break;
                }
            }
        }
        if let Some(status) = failed {
            self.calls.retain(|c| c.id != id);
            return self.send_error(id, &status);
        }
        if let Some(msg) = watch {
            self.start_watch(id, msg);
        }
        if end_stream {
            self.on_end(id);
        }
    }

    /// Health/Watch got its request: answer with the current status and
    /// keep the stream open (the next change is the shutdown).
    fn start_watch(&mut self, id: u32, msg: Bytes) {
        let status = services::health_request(msg).and_then(|s| services::health_of(&s, self.serving));
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                self.calls.retain(|c| c.id != id);
                return self.send_error(id, &e);
            }
        };
        let ok = self.conn.send_headers(id, 200, &[(b"content-type", CONTENT_TYPE)], false).is_ok()
            && self.conn.send_data(id, services::health_response(status), false).is_ok();
        match self.calls.iter_mut().find(|c| c.id == id) {
            Some(call) if ok && self.serving => call.watching = true,
            _ => {
                // Already shutting down (NOT_SERVING was just sent) or the
                // stream is gone: finish now.
                self.calls.retain(|c| c.id != id);
                if ok {
                    self.send_status(id, &Status::ok());
                }
            }
        }
    }

    /// The request side ended: answer unary calls.
    fn on_end(&mut self, id: u32) {
        let Some(pos) = self.calls.iter().position(|c| c.id == id) else {
            return;
        };
        if self.calls.get(pos).is_some_and(|c| c.watching) {
            // Server streaming: the client half-closing is normal.
            return;
        }
        let call = self.calls.swap_remove(pos);
        if call.decoder.is_partial() {
            return self.send_error(id, &message::truncated());
        }
        let Some(request) = call.first else {
            return self.send_error(id, &Status::new(Code::Internal, "Missing request message."));
        };
        match call_unary(call.method, request, self.serving) {
            Ok(reply) => {
                let sent = self.conn.send_headers(id, 200, &[(b"content-type", CONTENT_TYPE)], false).is_ok()
                    && self.conn.send_data(id, reply, false).is_ok();
                if sent {
                    self.send_status(id, &Status::ok());
                }
            }
            Err(status) => self.send_error(id, &status),
        }
    }

    /// Ends a call whose response HEADERS went out: trailers with END_STREAM.
    fn send_status(&mut self, id: u32, status: &Status) {
        let fields = status.trailer_fields();
        let fields: Vec<(&[u8], &[u8])> = fields.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        // A failure means the stream is gone (reset): nothing left to tell.
        let _ = self.conn.send_trailers(id, &fields);
    }

    /// Fails a call before any response: one Trailers-Only HEADERS frame.
    fn send_error(&mut self, id: u32, status: &Status) {
        self.send_trailers_only(id, status, &[]);
    }

    /// `:status 200`, content-type, grpc-status, grpc-message (+ `extra`)
    /// in one HEADERS frame with END_STREAM.
    fn send_trailers_only(&mut self, id: u32, status: &Status, extra: &[(&[u8], &[u8])]) {
        let trailers = status.trailer_fields();
        let mut fields: Vec<(&[u8], &[u8])> = vec![(b"content-type", CONTENT_TYPE)];
        fields.extend(trailers.iter().map(|(n, v)| (*n, v.as_slice())));
        fields.extend_from_slice(extra);
        let _ = self.conn.send_headers(id, 200, &fields, true);
    }

    /// A plain HTTP answer for a request that is not gRPC at all.
    fn send_http_error(&mut self, id: u32, status: u16, body: &'static str) {
        let fields: [(&[u8], &[u8]); 1] = [(b"content-type", b"text/plain; charset=utf-8")];
        if self.conn.send_headers(id, status, &fields, false).is_ok() {
            let _ = self.conn.send_data(id, Bytes::from_static(body.as_bytes()), true);
        }
    }
}

/// Runs a unary method on one request message.
fn call_unary(method: Method, request: Bytes, serving: bool) -> Result<Bytes, Status> {
    match method {
        Method::EchoReply => services::echo_reply(request),
        Method::HealthCheck => services::health_check(request, serving),
        // Never unary; kept total so a routing slip answers instead of panicking.
        Method::HealthWatch => services::health_check(request, serving),
    }
}

/// gRPC spec: `Content-Type → "content-type" "application/grpc" [("+proto" /
/// "+json" / {custom})]`; parameters after `;` are tolerated.
fn is_grpc_content_type(value: Option<&[u8]>) -> bool {
    match value.and_then(|v| v.strip_prefix(b"application/grpc")) {
        Some(rest) => rest.is_empty() || rest.starts_with(b"+") || rest.starts_with(b";"),
        None => false,
    }
}
