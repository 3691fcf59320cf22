//! One gRPC connection: an [`h2::Connection`](crate::h2::Connection) plus the
//! state of each call on it, with the same `handle_*` / `poll_*` shape.
//!
//! The driver feeds bytes and time in and takes bytes and the next deadline
//! out; the session turns HTTP/2 request events into calls, routes them by
//! `:path` to [`services`] and writes each response. Where a
//! request enters: [`Session::handle_input`] → `on_headers` (checks and
//! routing) → `on_data` (message decoding, bounded per stream) → `finish`
//! (the reply).
//!
//! Answers for bad requests follow tonic 0.14 (and the tokio flavour's
//! wording where it adds its own checks), so both server flavours agree:
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
//! | call not finished at its `grpc-timeout` | DEADLINE_EXCEEDED "deadline exceeded" |
//! | malformed `grpc-timeout` | ignored (no deadline) |
//!
//! Errors before any reply message use one Trailers-Only HEADERS frame.

use std::time::Instant;

use bytes::Bytes;

use super::budget::Budget;
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

/// Reflection answers (bytes) one stream may have queued unsent before its
/// call fails: a client that keeps asking but grants no flow-control window
/// cannot make the server buffer without bound.
#[cfg(feature = "reflection")]
const MAX_UNREAD_REPLIES: usize = 1024 * 1024;

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
    /// The response HEADERS went out (streaming calls): the call must end
    /// with trailers, not Trailers-Only. For Health/Watch it also means the
    /// stream stays open for status changes.
    responding: bool,
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
    /// The server's shared memory pool (see [`crate::grpc::budget`]).
    budget: Budget,
    /// Pool bytes each stream reserved (and granted as credit) for a
    /// message larger than its window: (stream, bytes).
    reserved: Vec<(u32, usize)>,
    /// Pool bytes reserved for reply data queued and not yet written:
    /// (stream, bytes); a client that grants no window cannot make replies
    /// pile up beyond the budget.
    outbound: Vec<(u32, usize)>,
    /// The latest time the driver told us about.
    now: Instant,
}

impl Session {
    /// A new server connection with a memory pool of its own (for tests and
    /// single-connection use); the core queues our SETTINGS at once.
    pub fn new(config: &Config, now: Instant) -> Session {
        let pool = config
            .memory_plan()
            .map_or(config.memory_budget, |p| p.pool);
        Session::with_budget(config, now, Budget::new(pool))
    }

    /// A new server connection sharing the server's memory pool `budget`.
    pub fn with_budget(config: &Config, now: Instant, budget: Budget) -> Session {
        let mut conn = Connection::new(Limits::from_config(config), now);
        // Credit goes back only for bytes no longer held (or reserved).
        conn.defer_credit();
        Session {
            conn,
            calls: Vec::new(),
            max_message_size: config.max_message_size,
            serving: true,
            budget,
            reserved: Vec::new(),
            outbound: Vec::new(),
            now,
        }
    }

    /// Feeds bytes read from the socket.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        self.now = now;
        self.conn.handle_input(bytes, now);
        self.process_events(now);
    }

    /// The peer closed its sending side (read returned 0).
    pub fn handle_read_closed(&mut self, now: Instant) {
        self.now = now;
        self.conn.handle_read_closed();
        self.process_events(now);
    }

    /// Runs the timers due at `now`: the core's (handshake, idle, keepalive)
    /// and call deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.conn.handle_timeout(now);
        self.process_events(now);
        let mut i = 0;
        while let Some(call) = self.calls.get(i) {
            if call.deadline.is_some_and(|d| d <= now) {
                let call = self.calls.swap_remove(i);
                let status = Status::new(crate::service::DEADLINE, "deadline exceeded");
                if call.responding {
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
        // Reply bytes written (or dropped with their stream) leave the pool.
        let conn = &self.conn;
        let budget = &self.budget;
        self.outbound.retain_mut(|(id, reserved)| {
            let queued = conn.queued_data(*id);
            budget.release(reserved.saturating_sub(queued));
            *reserved = queued.min(*reserved);
            *reserved > 0
        });
        // Streams the core gave up on while writing (replies a vanished
        // client can never take) end their calls.
        self.process_events(self.now);
    }

    /// The earliest instant [`Session::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .iter()
            .filter_map(|c| c.deadline)
            .chain(self.conn.poll_timeout())
            .min()
    }

    /// False while too much output is unsent (answers included) or too many
    /// events wait: stop reading until it drains.
    pub fn wants_input(&self) -> bool {
        self.conn.wants_input()
    }

    /// Nothing more will happen: flush what is left and close the socket.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Why the connection was closed, if for an error (see
    /// [`Connection::close_error`](crate::h2::Connection::close_error)).
    pub fn close_error(&self) -> Option<(crate::h2::ErrorCode, &'static str)> {
        self.conn.close_error()
    }

    /// Since when the connection has had no open call; `None` while one is
    /// open (see [`Connection::idle_since`]).
    pub fn idle_since(&self) -> Option<Instant> {
        if self.calls.is_empty() {
            self.conn.idle_since()
        } else {
            None
        }
    }

    /// Calls not yet answered (counted as abandoned if shutdown cuts them off).
    pub fn open_calls(&self) -> usize {
        self.calls.len()
    }

    /// Graceful shutdown: health turns NOT_SERVING (watchers are told, then
    /// their calls finish), GOAWAY goes out, open calls may finish.
    pub fn shutdown(&mut self) {
        self.serving = false;
        let is_watcher = |c: &Call| c.method == Method::HealthWatch && c.responding;
        let watchers: Vec<u32> = self
            .calls
            .iter()
            .filter(|c| is_watcher(c))
            .map(|c| c.id)
            .collect();
        self.calls.retain(|c| !is_watcher(c));
        for id in watchers {
            let sent = self.conn.send_data(
                id,
                services::health_response(ServingStatus::NotServing),
                false,
            );
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
                Event::Headers {
                    id,
                    head,
                    end_stream,
                } => self.on_headers(id, &head, end_stream, now),
                Event::Data {
                    id,
                    data,
                    end_stream,
                } => {
                    let held = self.held(id) + data.len();
                    self.on_data(id, data, end_stream);
                    self.settle(id, held);
                }
                Event::Trailers { id } => self.on_end(id),
                Event::Reset { id, .. } => self.calls.retain(|c| c.id != id),
            }
        }
        // Reservations of calls that are gone (answered, failed, reset).
        let calls = &self.calls;
        let budget = &self.budget;
        self.reserved.retain(|&(id, n)| {
            let live = calls.iter().any(|c| c.id == id);
            if !live {
                budget.release(n);
            }
            live
        });
    }

    /// Request bytes the call on `id` holds (0 if there is none).
    fn held(&self, id: u32) -> usize {
        self.calls
            .iter()
            .find(|c| c.id == id)
            .map_or(0, |c| c.decoder.buffered())
    }

    /// Flow control for stream `id`, which held `before` bytes (what it had
    /// plus what just arrived): bytes no longer held first pay back the
    /// stream's reservation, the rest go back to the client as credit. Then,
    /// if a message still needs more than the client may send, that much is
    /// reserved from the pool and granted, or the call fails with
    /// RESOURCE_EXHAUSTED when the pool cannot cover it.
    fn settle(&mut self, id: u32, before: usize) {
        let consumed = before.saturating_sub(self.held(id));
        let mut credit = consumed;
        if let Some(entry) = self.reserved.iter_mut().find(|(s, _)| *s == id) {
            let pay = entry.1.min(consumed);
            entry.1 -= pay;
            self.budget.release(pay);
            credit -= pay;
        }
        self.conn.release_data(id, credit);
        let missing = self
            .calls
            .iter()
            .find(|c| c.id == id)
            .map_or(0, |c| c.decoder.missing());
        let need = missing.saturating_sub(self.conn.recv_credit(id));
        if need == 0 {
            return;
        }
        if self.budget.try_reserve_large(need) {
            match self.reserved.iter_mut().find(|(s, _)| *s == id) {
                Some(entry) => entry.1 += need,
                None => self.reserved.push((id, need)),
            }
            self.conn.grant(id, need);
        } else {
            let held = self.held(id);
            let status = Status::new(
                Code::ResourceExhausted,
                "server memory budget exhausted; retry later",
            );
            self.end_call(id, &status);
            // The call's partial message is dropped: its credit goes back.
            self.settle(id, held);
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
            responding: false,
        });
        if end_stream {
            self.on_end(id);
        }
    }

    /// Request body bytes: decode the messages they complete.
    fn on_data(&mut self, id: u32, data: Bytes, end_stream: bool) {
        let Some(call) = self.calls.iter_mut().find(|c| c.id == id) else {
            // Already answered (an early error) or reset: the bytes are
            // dropped (`settle` hands their credit back).
            return;
        };
        call.decoder.push(data);
        let mut failed = None;
        let mut watch = None;
        // Only reflection (a cargo feature) answers before the request ends.
        #[cfg_attr(not(feature = "reflection"), allow(unused_mut))]
        let mut replies = Vec::new();
        loop {
            match call.decoder.next_message() {
                Ok(None) => break,
                Ok(Some(msg)) => match call.method {
                    // A Watch that is already running ignores further messages.
                    Method::HealthWatch if call.responding || watch.is_some() => {}
                    Method::HealthWatch => watch = Some(msg),
                    // Bidirectional: every request message gets its answer now.
                    // Answers the client does not take (it grants no window)
                    // are bounded: past the bound the call fails.
                    #[cfg(feature = "reflection")]
                    Method::Reflection
                        if self.conn.queued_data(id)
                            + replies.iter().map(Bytes::len).sum::<usize>()
                            > MAX_UNREAD_REPLIES =>
                    {
                        failed = Some(Status::new(
                            Code::ResourceExhausted,
                            "too many reflection answers not read",
                        ));
                        break;
                    }
                    #[cfg(feature = "reflection")]
                    Method::Reflection => match super::reflection::reflect(msg) {
                        Ok(reply) => replies.push(reply),
                        Err(status) => {
                            failed = Some(status);
                            break;
                        }
                    },
                    _ if call.first.is_none() => call.first = Some(msg),
                    // tonic drains extra messages of a unary call through the
                    // decoder: they are dropped, but must decode.
                    method => {
                        if let Err(status) = services::decode_only(method, msg) {
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
        if !replies.is_empty() && !self.send_messages(id, replies) {
            self.calls.retain(|c| c.id != id);
            return;
        }
        if let Some(status) = failed {
            return self.end_call(id, &status);
        }
        if let Some(msg) = watch {
            self.start_watch(id, msg);
        }
        if end_stream {
            self.on_end(id);
        }
    }

    /// Sends reply messages on a streaming call, with the response HEADERS
    /// first if they have not gone out. False if the stream is gone.
    fn send_messages(&mut self, id: u32, replies: Vec<Bytes>) -> bool {
        let Some(call) = self.calls.iter_mut().find(|c| c.id == id) else {
            return false;
        };
        if !call.responding {
            call.responding = true;
            if self
                .conn
                .send_headers(id, 200, &[(b"content-type", CONTENT_TYPE)], false)
                .is_err()
            {
                return false;
            }
        }
        replies
            .into_iter()
            .all(|reply| self.conn.send_data(id, reply, false).is_ok())
    }

    /// Ends a call with `status`: trailers if the response started,
    /// Trailers-Only otherwise.
    fn end_call(&mut self, id: u32, status: &Status) {
        let responding = self.calls.iter().any(|c| c.id == id && c.responding);
        self.calls.retain(|c| c.id != id);
        if responding {
            self.send_status(id, status);
        } else {
            self.send_error(id, status);
        }
    }

    /// Health/Watch got its request: answer with the current status and
    /// keep the stream open (the next change is the shutdown).
    fn start_watch(&mut self, id: u32, msg: Bytes) {
        let status =
            services::health_request(msg).and_then(|s| services::health_of(&s, self.serving));
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                self.calls.retain(|c| c.id != id);
                return self.send_error(id, &e);
            }
        };
        let ok = self.send_messages(id, vec![services::health_response(status)]);
        match self.calls.iter().find(|c| c.id == id) {
            Some(_) if ok && self.serving => {}
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
        let Some(call) = self.calls.get(pos) else {
            return;
        };
        if call.decoder.is_partial() {
            return self.end_call(id, &message::truncated());
        }
        match call.method {
            // Server streaming: the client half-closing is normal.
            Method::HealthWatch if call.responding => return,
            #[cfg(feature = "reflection")]
            Method::Reflection => return self.end_call(id, &Status::ok()),
            _ => {}
        }
        let call = self.calls.swap_remove(pos);
        let Some(request) = call.first else {
            return self.send_error(id, &Status::new(Code::Internal, "Missing request message."));
        };
        match call_unary(call.method, request, self.serving) {
            Ok(reply) => {
                // The reply stays in memory until written: it takes its share
                // of the pool, or the call fails instead.
                let n = reply.len();
                let reserved = if n <= self.conn.recv_window_size() {
                    self.budget.try_reserve(n)
                } else {
                    self.budget.try_reserve_large(n)
                };
                if !reserved {
                    let status = Status::new(
                        Code::ResourceExhausted,
                        "server memory budget exhausted; retry later",
                    );
                    return self.send_error(id, &status);
                }
                self.outbound.push((id, n));
                let sent = self
                    .conn
                    .send_headers(id, 200, &[(b"content-type", CONTENT_TYPE)], false)
                    .is_ok()
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
        // A failure means the stream is gone (reset): nothing left to tell.
        let _ = status.with_trailer_fields(|fields| self.conn.send_trailers(id, fields));
    }

    /// Fails a call before any response: one Trailers-Only HEADERS frame.
    fn send_error(&mut self, id: u32, status: &Status) {
        self.send_trailers_only(id, status, &[]);
    }

    /// `:status 200`, content-type, grpc-status, grpc-message (+ `extra`)
    /// in one HEADERS frame with END_STREAM.
    fn send_trailers_only(&mut self, id: u32, status: &Status, extra: &[(&[u8], &[u8])]) {
        status.with_trailer_fields(|trailers| {
            let mut fields: Vec<(&[u8], &[u8])> = vec![(b"content-type", CONTENT_TYPE)];
            fields.extend_from_slice(trailers);
            fields.extend_from_slice(extra);
            let _ = self.conn.send_headers(id, 200, &fields, true);
        });
    }

    /// A plain HTTP answer for a request that is not gRPC at all.
    fn send_http_error(&mut self, id: u32, status: u16, body: &'static str) {
        let fields: [(&[u8], &[u8]); 1] = [(b"content-type", b"text/plain; charset=utf-8")];
        if self.conn.send_headers(id, status, &fields, false).is_ok() {
            let _ = self
                .conn
                .send_data(id, Bytes::from_static(body.as_bytes()), true);
        }
    }
}

impl Drop for Session {
    /// Whatever the connection still holds reserved goes back to the pool.
    fn drop(&mut self) {
        let held: usize = self
            .reserved
            .iter()
            .chain(&self.outbound)
            .map(|(_, n)| n)
            .sum();
        self.budget.release(held);
    }
}

/// Runs a unary method on one request message.
fn call_unary(method: Method, request: Bytes, serving: bool) -> Result<Bytes, Status> {
    match method {
        Method::EchoReply => services::echo_reply(request),
        Method::HealthCheck => services::health_check(request, serving),
        // Watch drains like Check; reflection never gets here. Kept total so
        // a routing slip answers instead of panicking.
        Method::HealthWatch => services::health_check(request, serving),
        #[cfg(feature = "reflection")]
        Method::Reflection => super::reflection::reflect(request),
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

#[cfg(test)]
mod tests {
    //! The session driven the way the readiness-loop driver drives it, by a test
    //! client that writes HTTP/2 frames by hand (literal HPACK fields, so
    //! these tests do not depend on our own encoder) and reads the answer
    //! frames with the crate's HPACK decoder.

    use std::collections::HashMap;
    use std::time::Duration;

    use prost::Message;

    use super::*;
    use crate::grpc::testwire::*;
    use crate::h2::hpack;
    use crate::proto::echo::{EchoReply, EchoRequest};
    use crate::proto::health::{HealthCheckRequest, HealthCheckResponse};

    fn framed<M: Message>(m: &M) -> Vec<u8> {
        message::encode(m).to_vec()
    }

    /// What the server sent on one stream.
    #[derive(Debug, Default)]
    struct Answer {
        /// Each header block in order (response headers, then trailers).
        blocks: Vec<Vec<(String, String)>>,
        /// Whether each block carried END_STREAM.
        block_ends: Vec<bool>,
        data: Vec<u8>,
        ended: bool,
        reset: Option<u32>,
    }

    impl Answer {
        fn field(&self, block: usize, name: &str) -> Option<&str> {
            self.blocks
                .get(block)?
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
        /// grpc-status from the last block.
        fn grpc_status(&self) -> Option<i32> {
            self.field(self.blocks.len().checked_sub(1)?, "grpc-status")?
                .parse()
                .ok()
        }
        fn messages(&self) -> Vec<Bytes> {
            let mut d = Decoder::new(1 << 20);
            d.push(Bytes::from(self.data.clone()));
            let mut v = Vec::new();
            while let Some(m) = d.next_message().unwrap() {
                v.push(m);
            }
            assert!(!d.is_partial(), "response ends mid-message");
            v
        }
    }

    struct Client {
        session: Session,
        now: Instant,
        decoder: hpack::Decoder,
        streams: HashMap<u32, Answer>,
        goaway: bool,
    }

    impl Client {
        fn new() -> Client {
            Client::with(Config::default())
        }

        fn with(config: Config) -> Client {
            let now = Instant::now();
            let mut c = Client {
                session: Session::new(&config, now),
                now,
                decoder: hpack::Decoder::new(4096, 1 << 20),
                streams: HashMap::new(),
                goaway: false,
            };
            let mut hello = PREFACE.to_vec();
            hello.extend(frame(SETTINGS, 0, 0, &[]));
            c.send(&hello);
            c
        }

        fn send(&mut self, bytes: &[u8]) {
            self.session.handle_input(bytes, self.now);
            self.read();
        }

        /// Reads and parses everything the server has to say; acks its SETTINGS.
        fn read(&mut self) {
            let mut out = Vec::new();
            self.session.poll_transmit(&mut out);
            let mut rest = &out[..];
            let mut acks = Vec::new();
            while rest.len() >= 9 {
                let len =
                    usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
                let (ty, flags) = (rest[3], rest[4]);
                let id = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7FFF_FFFF;
                let payload = &rest[9..9 + len];
                rest = &rest[9 + len..];
                match ty {
                    SETTINGS if flags & ACK == 0 => acks.extend(frame(SETTINGS, ACK, 0, &[])),
                    HEADERS => {
                        assert!(
                            flags & END_HEADERS != 0,
                            "test expects single-frame header blocks"
                        );
                        let mut fields = Vec::new();
                        self.decoder
                            .decode(payload, &mut |n, v| {
                                fields.push((
                                    String::from_utf8_lossy(n).into_owned(),
                                    String::from_utf8_lossy(v).into_owned(),
                                ))
                            })
                            .unwrap();
                        let a = self.streams.entry(id).or_default();
                        a.blocks.push(fields);
                        a.block_ends.push(flags & END_STREAM != 0);
                        a.ended |= flags & END_STREAM != 0;
                    }
                    DATA => {
                        let a = self.streams.entry(id).or_default();
                        a.data.extend_from_slice(payload);
                        a.ended |= flags & END_STREAM != 0;
                    }
                    RST_STREAM => {
                        self.streams.entry(id).or_default().reset = Some(u32::from_be_bytes([
                            payload[0], payload[1], payload[2], payload[3],
                        ]))
                    }
                    GOAWAY => self.goaway = true,
                    PING | SETTINGS => {}
                    _ => {}
                }
            }
            assert!(rest.is_empty(), "server output ends mid-frame");
            if !acks.is_empty() {
                self.session.handle_input(&acks, self.now);
                self.read();
            }
        }

        fn request(&mut self, id: u32, path: &str, extra: &[(&str, &str)], end_stream: bool) {
            let mut fields = vec![
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "localhost"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ];
            fields.extend_from_slice(extra);
            self.headers(id, &fields, end_stream);
        }

        fn headers(&mut self, id: u32, fields: &[(&str, &str)], end_stream: bool) {
            let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
            self.send(&frame(HEADERS, flags, id, &block(fields)));
        }

        fn data(&mut self, id: u32, payload: &[u8], end_stream: bool) {
            self.send(&frame(
                DATA,
                if end_stream { END_STREAM } else { 0 },
                id,
                payload,
            ));
        }

        fn unary(&mut self, id: u32, path: &str, body: &[u8]) -> &Answer {
            self.request(id, path, &[], false);
            self.data(id, body, true);
            self.answer(id)
        }

        fn answer(&self, id: u32) -> &Answer {
            self.streams.get(&id).expect("no answer on stream")
        }

        fn advance(&mut self, by: Duration) {
            self.now += by;
            self.session.handle_timeout(self.now);
            self.read();
        }
    }

    fn echo_body(m: &str) -> Vec<u8> {
        framed(&EchoRequest { message: m.into() })
    }

    fn reply_text(a: &Answer) -> String {
        let msgs = a.messages();
        assert_eq!(msgs.len(), 1);
        EchoReply::decode(msgs[0].clone()).unwrap().message
    }

    #[test]
    fn echo_unary_round_trip() {
        let mut c = Client::new();
        let a = c.unary(1, "/echo.Echo/Reply", &echo_body("Hello World!"));
        assert!(a.ended);
        assert_eq!(a.blocks.len(), 2, "headers + trailers");
        assert_eq!(a.field(0, ":status"), Some("200"));
        assert_eq!(a.field(0, "content-type"), Some("application/grpc"));
        assert_eq!(a.block_ends, [false, true]);
        assert_eq!(a.grpc_status(), Some(0));
        assert_eq!(reply_text(a), "You said: Hello World!");
        assert_eq!(c.session.open_calls(), 0);
    }

    #[test]
    fn unread_answers_stop_input_until_taken() {
        let mut c = Client::new();
        // Windows large enough that only the unread output holds answers back.
        let mut grant = frame(SETTINGS, 0, 0, &[0, 4, 0, 0x10, 0, 0]);
        grant.extend(frame(8, 0, 0, &(1u32 << 20).to_be_bytes()));
        c.send(&grant);
        let fields = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/echo.Echo/Reply"),
            (":authority", "x"),
            ("content-type", "application/grpc"),
        ];
        // Whole calls with 12 KB answers (one DATA frame each) fed without
        // taking the output.
        let mut fed = 0;
        for id in (1..40).step_by(2) {
            if !c.session.wants_input() {
                break;
            }
            let mut f = frame(HEADERS, END_HEADERS, id, &block(&fields));
            f.extend(frame(DATA, END_STREAM, id, &echo_body(&"a".repeat(12_000))));
            c.session.handle_input(&f, c.now);
            fed += 1;
        }
        assert_eq!(fed, 6, "input stops once 64 KiB of answers wait");
        c.read();
        c.read();
        assert!(c.session.wants_input(), "taken: input resumes");
        assert_eq!(c.streams.len(), 6);
        assert!(c.streams.values().all(|a| a.ended));
    }

    #[test]
    fn message_split_across_frames_and_streams_interleaved() {
        let mut c = Client::new();
        let one = echo_body("first");
        let three = echo_body("second");
        c.request(1, "/echo.Echo/Reply", &[], false);
        c.request(3, "/echo.Echo/Reply", &[], false);
        for (i, chunk) in one.chunks(2).enumerate() {
            c.data(1, chunk, false);
            if let Some(b) = three.get(i) {
                c.data(3, &[*b], false);
            }
        }
        c.data(3, &three[one.len().div_ceil(2).min(three.len())..], true);
        c.data(1, &[], true);
        assert_eq!(reply_text(c.answer(1)), "You said: first");
        assert_eq!(reply_text(c.answer(3)), "You said: second");
    }

    #[test]
    fn get_gets_405_with_text_body() {
        let mut c = Client::new();
        c.headers(
            1,
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "x"),
            ],
            true,
        );
        let a = c.answer(1);
        assert_eq!(a.field(0, ":status"), Some("405"));
        assert!(a
            .field(0, "content-type")
            .unwrap()
            .starts_with("text/plain"));
        assert_eq!(a.data, NOT_POST_BODY.as_bytes());
        assert!(a.ended);
    }

    #[test]
    fn wrong_content_type_gets_415() {
        let mut c = Client::new();
        let fields = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/echo.Echo/Reply"),
            (":authority", "x"),
            ("content-type", "application/json"),
        ];
        c.headers(1, &fields, true);
        assert_eq!(c.answer(1).field(0, ":status"), Some("415"));
        assert_eq!(c.answer(1).data, NOT_GRPC_BODY.as_bytes());
        assert!(is_grpc_content_type(Some(b"application/grpc+proto")));
        assert!(!is_grpc_content_type(Some(b"application/grpc-web")));
        assert!(!is_grpc_content_type(None));
    }

    #[test]
    fn unknown_method_is_trailers_only_unimplemented() {
        let mut c = Client::new();
        let a = c.unary(1, "/echo.Echo/Nope", &echo_body("x"));
        assert_eq!(a.blocks.len(), 1, "Trailers-Only: one HEADERS frame");
        assert_eq!(a.block_ends, [true]);
        assert_eq!(a.field(0, ":status"), Some("200"));
        assert_eq!(a.field(0, "content-type"), Some("application/grpc"));
        assert_eq!(a.grpc_status(), Some(Code::Unimplemented.as_i32()));
        assert!(a.data.is_empty());
    }

    #[test]
    fn oversize_message_rejected_on_its_prefix() {
        let mut c = Client::with(Config {
            max_message_size: 16,
            ..Config::default()
        });
        c.request(1, "/echo.Echo/Reply", &[], false);
        // Only the prefix of a 1 MiB message: the answer must not wait for the body.
        c.data(1, &[0, 0, 0x10, 0, 0], false);
        let a = c.answer(1);
        assert_eq!(a.grpc_status(), Some(crate::service::TOO_LARGE.as_i32()));
        assert!(a.field(0, "grpc-message").unwrap().contains("1048576"));
        assert_eq!(c.session.open_calls(), 0);
    }

    #[test]
    fn unary_edge_cases_match_tonic() {
        let mut c = Client::new();
        // No message at all.
        c.request(1, "/echo.Echo/Reply", &[], true);
        assert_eq!(c.answer(1).grpc_status(), Some(Code::Internal.as_i32()));
        assert_eq!(
            c.answer(1).field(0, "grpc-message"),
            Some("Missing request message.")
        );
        // Two messages: the first is answered.
        let mut two = echo_body("one");
        two.extend(echo_body("two"));
        assert_eq!(
            reply_text(c.unary(3, "/echo.Echo/Reply", &two)),
            "You said: one"
        );
        // Cut mid-message.
        let body = echo_body("truncated");
        c.request(5, "/echo.Echo/Reply", &[], false);
        c.data(5, &body[..body.len() - 1], true);
        assert_eq!(c.answer(5).grpc_status(), Some(Code::Internal.as_i32()));
        // Invalid UTF-8 in the string field.
        let a = c.unary(7, "/echo.Echo/Reply", &[0, 0, 0, 0, 3, 0x0A, 0x01, 0xFF]);
        assert_eq!(a.grpc_status(), Some(crate::service::DECODE_ERROR.as_i32()));
        // Compressed flag without grpc-encoding.
        let a = c.unary(9, "/echo.Echo/Reply", &[1, 0, 0, 0, 0]);
        assert_eq!(a.grpc_status(), Some(Code::Internal.as_i32()));
        // An unsupported grpc-encoding.
        c.request(11, "/echo.Echo/Reply", &[("grpc-encoding", "gzip")], true);
        let a = c.answer(11);
        assert_eq!(a.grpc_status(), Some(Code::Unimplemented.as_i32()));
        assert_eq!(a.field(0, "grpc-accept-encoding"), Some("identity"));
        assert_eq!(c.session.open_calls(), 0);
    }

    #[test]
    fn deadline_fails_an_incomplete_call() {
        let mut c = Client::new();
        c.request(1, "/echo.Echo/Reply", &[("grpc-timeout", "100m")], false);
        c.request(3, "/echo.Echo/Reply", &[("grpc-timeout", "bogus")], false);
        let deadline = c.session.poll_timeout().unwrap();
        assert!(deadline <= c.now + Duration::from_millis(100));
        c.advance(Duration::from_millis(50));
        assert!(!c.streams.contains_key(&1));
        c.advance(Duration::from_millis(60));
        assert_eq!(
            c.answer(1).grpc_status(),
            Some(crate::service::DEADLINE.as_i32())
        );
        // The malformed timeout was ignored: stream 3 is still open and answers.
        assert!(!c.streams.contains_key(&3));
        c.data(3, &echo_body("late"), true);
        assert_eq!(reply_text(c.answer(3)), "You said: late");
    }

    /// hostile `vanished_client_with_a_blocked_reply_is_closed`, at the
    /// session: a Watch whose first answer is stuck behind a zero window
    /// when the client goes away ends its call, and the session closes.
    #[test]
    fn replies_a_client_does_not_take_are_bounded_by_the_budget() {
        // 1 MiB budget, one connection: 256 KiB window, 768 KiB pool.
        let config = Config {
            memory_budget: 1 << 20,
            max_connections: 1,
            max_message_size: 64 << 10,
            ..Config::default()
        };
        let pool = config.memory_plan().expect("fits").pool;
        let mut c = Client::with(config);
        // The client grants no window: no reply DATA can be written.
        c.send(&frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]));
        let text = "r".repeat(15 << 10);
        let ids: Vec<u32> = (0..80).map(|n| 2 * n + 1).collect();
        for &id in &ids {
            c.unary(id, "/echo.Echo/Reply", &echo_body(&text));
        }
        let status = |c: &Client, id| c.answer(id).grpc_status();
        let refused = ids.iter().filter(|&&id| status(&c, id) == Some(8)).count();
        assert!(refused > 0, "80 unread 15 KiB replies all held");
        assert!(refused < 60, "{refused} refused: the pool holds ~49");
        assert!(c.session.budget.used() <= pool);
        // Once the client grants credit the replies go out, and the pool
        // empties again.
        c.send(&frame(SETTINGS, 0, 0, &[0, 4, 0, 0x10, 0, 0]));
        c.send(&frame(8, 0, 0, &(16u32 << 20).to_be_bytes()));
        // (poll_transmit writes ~64 KiB of DATA per call.)
        for _ in 0..100 {
            c.read();
        }
        let answered = ids.iter().filter(|&&id| status(&c, id) == Some(0)).count();
        assert_eq!(answered + refused, 80);
        assert_eq!(c.session.budget.used(), 0);
    }

    #[test]
    fn a_dropped_session_gives_its_reservations_back() {
        let config = Config {
            memory_budget: 1 << 20,
            max_connections: 1,
            max_message_size: 512 << 10,
            ..Config::default()
        };
        let budget = Budget::new(config.memory_plan().expect("fits").pool);
        let mut c = Client::with(config.clone());
        c.session = Session::with_budget(&config, c.now, budget.clone());
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        c.send(&hello);
        // A 400 KiB message announced, 16 KiB of it sent: the rest is
        // reserved and granted.
        let body = echo_body(&"x".repeat(400 << 10));
        c.request(1, "/echo.Echo/Reply", &[], false);
        c.data(1, &body[..16 << 10], false);
        assert!(budget.used() > 100 << 10, "{}", budget.used());
        drop(c);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn vanished_client_with_a_blocked_reply_ends_the_call() {
        let mut c = Client::new();
        c.send(&frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]));
        let req = framed(&HealthCheckRequest {
            service: String::new(),
        });
        c.request(1, "/grpc.health.v1.Health/Watch", &[], false);
        c.data(1, &req, true);
        assert_eq!(c.answer(1).blocks.len(), 1, "HEADERS went out");
        assert!(c.answer(1).data.is_empty(), "the status waits for credit");
        assert_eq!(c.session.open_calls(), 1);
        c.session.handle_read_closed(c.now);
        c.read();
        assert_eq!(c.session.open_calls(), 0);
        assert!(c.session.is_closed());
    }

    #[test]
    fn health_check_watch_and_shutdown() {
        let mut c = Client::new();
        let req = framed(&HealthCheckRequest {
            service: "echo.Echo".into(),
        });
        let a = c.unary(1, "/grpc.health.v1.Health/Check", &req);
        let r = HealthCheckResponse::decode(a.messages()[0].clone()).unwrap();
        assert_eq!(r.status, ServingStatus::Serving as i32);
        let unknown = framed(&HealthCheckRequest {
            service: "x.Y".into(),
        });
        let a = c.unary(3, "/grpc.health.v1.Health/Check", &unknown);
        assert_eq!(a.grpc_status(), Some(Code::NotFound.as_i32()));

        let a = c.unary(
            5,
            "/grpc.health.v1.Health/Watch",
            &framed(&HealthCheckRequest::default()),
        );
        assert!(!a.ended, "watch stays open");
        let r = HealthCheckResponse::decode(a.messages()[0].clone()).unwrap();
        assert_eq!(r.status, ServingStatus::Serving as i32);

        c.session.shutdown();
        c.read();
        assert!(c.goaway);
        let a = c.answer(5);
        assert!(a.ended);
        assert_eq!(a.grpc_status(), Some(0));
        let statuses: Vec<i32> = a
            .messages()
            .into_iter()
            .map(|m| HealthCheckResponse::decode(m).unwrap().status)
            .collect();
        assert_eq!(
            statuses,
            [
                ServingStatus::Serving as i32,
                ServingStatus::NotServing as i32
            ]
        );
        assert_eq!(c.session.open_calls(), 0);
    }

    #[cfg(feature = "reflection")]
    #[test]
    fn unread_reflection_answers_are_bounded() {
        use super::super::reflection::pb;
        use pb::server_reflection_request::MessageRequest;
        let mut c = Client::new();
        // No stream window: no answer can be written.
        c.send(&frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]));
        c.request(
            1,
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            &[],
            false,
        );
        let ask = framed(&pb::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol("echo.Echo".into())),
        });
        let asks: Vec<u8> = ask.iter().copied().cycle().take(ask.len() * 100).collect();
        for _ in 0..100 {
            c.data(1, &asks, false);
        }
        let queued = c.session.conn.queued_data(1);
        assert!(queued > 0);
        assert!(queued <= MAX_UNREAD_REPLIES + 16 * 1024, "{queued}");
        assert_eq!(c.session.open_calls(), 0, "the call failed");
    }

    #[cfg(feature = "reflection")]
    #[test]
    fn reflection_answers_each_message_on_one_stream() {
        use super::super::reflection::pb;
        use pb::server_reflection_request::MessageRequest;
        let mut c = Client::new();
        let path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        c.request(1, path, &[], false);
        let ask = |r: MessageRequest| {
            framed(&pb::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(r),
            })
        };
        c.data(1, &ask(MessageRequest::ListServices(String::new())), false);
        assert_eq!(
            c.answer(1).messages().len(),
            1,
            "answered before the request ends"
        );
        c.data(
            1,
            &ask(MessageRequest::FileContainingSymbol("echo.Echo".into())),
            true,
        );
        let a = c.answer(1);
        assert!(a.ended);
        assert_eq!(a.grpc_status(), Some(0));
        assert_eq!(a.messages().len(), 2);
    }
}
