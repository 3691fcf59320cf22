//! One gRPC connection: an [`h2::Connection`](crate::h2::Connection) plus the
//! calls on it, with the same `handle_*` / `poll_*` shape.
//!
//! The driver feeds bytes and time in and takes bytes and the next deadline
//! out; the session turns HTTP/2 request events into calls, routes them by
//! `:path` through the [`Router`] and drives each call's handler (see
//! [`super::api`] for the call model). Where a request enters:
//! [`Session::handle_input`] → `on_headers` (checks and routing) → `on_data`
//! (message decoding, bounded per stream) → `drive` (the call's state
//! machine: replies out while its queue has room, request messages in
//! while it keeps up, the half-close, the end).
//!
//! Answers for bad requests follow tonic 0.14 (and the tokio flavour's
//! wording where it adds its own checks), so both server flavours agree:
//!
//! | request | answer |
//! | --- | --- |
//! | `:method` not POST | HTTP 405, `allow: POST`, short `text/plain` body |
//! | `content-type` not `application/grpc[+…;…]` | HTTP 415, short `text/plain` body |
//! | `grpc-encoding` other than `identity` | UNIMPLEMENTED + `grpc-accept-encoding: identity` |
//! | unknown `:path` | UNIMPLEMENTED |
//! | message over the receive limit | [`crate::service::TOO_LARGE`] (decided from the prefix) |
//! | reply over the send limit | OUT_OF_RANGE (tonic's wording) |
//! | compressed flag set | INTERNAL |
//! | unary / server-streaming request with no message | INTERNAL "Missing request message." |
//! | … with a second message | UNIMPLEMENTED (a cardinality violation, `statuscodes.md`) |
//! | request cut mid-message | INTERNAL "Unexpected EOF decoding stream." |
//! | undecodable protobuf / bad UTF-8 | [`crate::service::DECODE_ERROR`] |
//! | call not finished at its `grpc-timeout` | DEADLINE_EXCEEDED "deadline exceeded" |
//! | malformed `grpc-timeout` | ignored (no deadline) |
//!
//! Errors before any reply message use one Trailers-Only HEADERS frame.
//!
//! Input is fed to the core up to each frame that makes an event, and the
//! event is acted on before the next frame is read, so the session answers
//! the same whatever the read boundaries.

use std::rc::Rc;

use bytes::Bytes;

use super::api::{Cancel, Ctx, Kind, Next, RawCall, ResponseMeta, Router, SEND_QUEUE};
use super::budget::Budget;
use super::message::{self, Decoder, PREFIX_LEN};
use super::status::{Status, CONTENT_TYPE};
use super::timeout;
use crate::h2::{Connection, Event, RequestHead, Timestamp};
use crate::status::Code;

pub use crate::service::{NOT_GRPC_BODY, NOT_POST_BODY};

/// What a session is allowed: the HTTP/2 limits and the message size bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The HTTP/2 core's limits.
    pub h2: crate::h2::Limits,
    /// Largest request message accepted (RESOURCE_EXHAUSTED above it).
    pub max_recv_message_size: usize,
    /// Largest reply message sent (the call fails OUT_OF_RANGE above it).
    pub max_send_message_size: usize,
    /// Size of the memory pool a session made with [`Session::new`] gets
    /// for itself (servers share one: [`Session::with_budget`]).
    pub memory_pool: usize,
}

/// One call in progress.
struct Call {
    /// Its HTTP/2 stream.
    id: u32,
    /// What the method takes and gives.
    kind: Kind,
    /// (service, method) in the router.
    route: (usize, usize),
    /// Reassembles request messages.
    decoder: Decoder,
    /// The request head, kept until a one-request call starts.
    head: Option<Box<RequestHead>>,
    /// A one-request call's message, until the call starts.
    request: Option<Bytes>,
    /// The handler, once the call started.
    handler: Option<Box<dyn RawCall>>,
    /// From `grpc-timeout`: when the call fails with DEADLINE_EXCEEDED.
    deadline: Option<Timestamp>,
    /// When the handler asked to be polled again.
    wake: Option<Timestamp>,
    /// Response metadata the handler set; tells whether the headers went out.
    meta: ResponseMeta,
    /// The client ended its side (END_STREAM or trailers).
    recv_ended: bool,
    /// ...and the handler was told (or the one-request call started).
    half_closed: bool,
    /// Request bytes received whose flow-control credit is held (what its
    /// decoder and `request` hold, plus, while blocked, what it consumed).
    held: usize,
    /// Pool bytes reserved for (and granted as credit to) a message larger
    /// than the client may send; paid back as its bytes are consumed.
    reserved: usize,
    /// Held bytes of a blocked call whose connection credit went back
    /// against a pool reservation, so a stalled call does not hold up the
    /// connection's other streams.
    parked: usize,
    /// The last drive stopped on a full send queue.
    blocked: bool,
}

/// How one step of a call's state machine ended.
enum Step {
    /// Something happened: step again.
    Again,
    /// Nothing to do until the next event.
    Idle,
    /// The call is over with this status.
    End(Status),
    /// The stream is gone (reset): drop the call.
    Gone,
}

/// A gRPC server connection: HTTP/2 plus calls. Owns no socket and reads no clock.
pub struct Session {
    /// The HTTP/2 core that frames everything.
    conn: Connection,
    /// The services, shared by every connection of the server.
    router: Rc<Router>,
    /// Calls not finished; few (bounded by max-concurrent-streams), so a
    /// Vec beats a map.
    calls: Vec<Call>,
    /// Message size bounds.
    max_recv: usize,
    max_send: usize,
    /// Non-gRPC requests whose HTTP error answer waits for the end of the
    /// request: (stream, status, body). Answering at once would make the
    /// rest of the request (still checked by the core until our answer is
    /// written) pass or fail depending on when the driver wrote it.
    http_errors: Vec<(u32, u16, &'static str)>,
    /// Shutdown started: health says NOT_SERVING, long calls should end.
    draining: bool,
    /// The server's shared memory pool (see [`crate::grpc::budget`]).
    budget: Budget,
    /// Pool bytes reserved for reply data queued and not yet written:
    /// (stream, bytes); a client that grants no window cannot make replies
    /// pile up beyond the budget.
    outbound: Vec<(u32, usize)>,
    /// The latest time the driver told us about.
    now: Timestamp,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("conn", &self.conn)
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    /// The connection is gone with calls still running (closed, or the
    /// shutdown drain is over): their handlers hear it.
    /// Whatever the connection still holds reserved goes back to the pool.
    fn drop(&mut self) {
        for call in &mut self.calls {
            if let Some(h) = &mut call.handler {
                h.on_cancel(Cancel::Closed);
            }
            self.budget.release(call.reserved + call.parked);
        }
        let queued: usize = self.outbound.iter().map(|(_, n)| n).sum();
        self.budget.release(queued);
    }
}

impl Session {
    /// A new server connection serving `router`'s services with a memory
    /// pool of its own (`limits.memory_pool`; for tests and single
    /// connections); the core queues our SETTINGS at once. `now` is the
    /// driver's clock.
    pub fn new(limits: &Limits, router: Rc<Router>, now: Timestamp) -> Session {
        let budget = Budget::new(limits.memory_pool);
        Session::with_budget(limits, router, budget, now)
    }

    /// A new server connection sharing the server's memory pool `budget`.
    pub fn with_budget(
        limits: &Limits,
        router: Rc<Router>,
        budget: Budget,
        now: Timestamp,
    ) -> Session {
        let mut conn = Connection::new(limits.h2.clone(), now);
        // Credit goes back only for bytes no longer held (or reserved).
        conn.defer_credit();
        Session {
            conn,
            budget,
            outbound: Vec::new(),
            router,
            calls: Vec::new(),
            http_errors: Vec::new(),
            max_recv: limits.max_recv_message_size,
            max_send: limits.max_send_message_size,
            draining: false,
            now,
        }
    }

    /// Feeds bytes read from the socket.
    pub fn handle_input(&mut self, bytes: &[u8], now: Timestamp) {
        self.now = now;
        let mut input = bytes;
        loop {
            let n = self.conn.handle_input_until_event(input, now);
            self.process_events();
            input = input.get(n..).unwrap_or_default();
            if n == 0 || input.is_empty() {
                break;
            }
        }
    }

    /// The peer closed its sending side (read returned 0).
    pub fn handle_read_closed(&mut self, now: Timestamp) {
        self.now = now;
        self.conn.handle_read_closed();
        self.process_events();
    }

    /// Runs the timers due at `now`: the core's (handshake, idle,
    /// keepalive), call deadlines and the calls' own timers.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now = now;
        self.conn.handle_timeout(now);
        self.process_events();
        let expired: Vec<u32> = self
            .calls
            .iter()
            .filter(|c| c.deadline.is_some_and(|d| d <= now))
            .map(|c| c.id)
            .collect();
        for id in expired {
            if let Some(pos) = self.position(id) {
                if let Some(h) = &mut self.calls[pos].handler {
                    h.on_cancel(Cancel::Deadline);
                }
                self.end_call(
                    pos,
                    Status::new(crate::service::DEADLINE, "deadline exceeded"),
                );
            }
        }
        let due: Vec<u32> = self
            .calls
            .iter()
            .filter(|c| c.wake.is_some_and(|w| w <= now))
            .map(|c| c.id)
            .collect();
        for id in due {
            self.drive(id);
        }
    }

    /// Appends the bytes to write to the socket.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.conn.poll_transmit(out);
        self.release_written();
        // Streams the core gave up on while writing (replies a vanished
        // client can never take) end their calls.
        self.process_events();
        // Calls whose queue drained may produce again.
        let ready: Vec<u32> = self
            .calls
            .iter()
            .filter(|c| c.blocked && self.conn.queued_data(c.id) < SEND_QUEUE)
            .map(|c| c.id)
            .collect();
        if !ready.is_empty() {
            for id in ready {
                self.drive(id);
            }
            self.conn.poll_transmit(out);
            self.release_written();
        }
    }

    /// Reply bytes written (or dropped with their stream) leave the pool.
    fn release_written(&mut self) {
        let conn = &self.conn;
        let budget = &self.budget;
        self.outbound.retain_mut(|(id, reserved)| {
            let queued = conn.queued_data(*id);
            budget.release(reserved.saturating_sub(queued));
            *reserved = queued.min(*reserved);
            *reserved > 0
        });
    }

    /// Pool bytes reserved now by this connection's calls and queued
    /// replies (tests).
    #[cfg(test)]
    fn reserved(&self) -> usize {
        let calls: usize = self.calls.iter().map(|c| c.reserved + c.parked).sum();
        calls + self.outbound.iter().map(|(_, n)| n).sum::<usize>()
    }

    /// The earliest time [`Session::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        // A plain loop: the iterator chain cost ~600 bytes of code on aarch64.
        let mut next = self.conn.poll_timeout();
        for c in &self.calls {
            earliest(&mut next, c.deadline);
            earliest(&mut next, c.wake);
        }
        next
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

    /// The next diagnostic for the driver's debug log (the core logs nothing).
    pub fn poll_report(&mut self) -> Option<crate::h2::Report> {
        self.conn.poll_report()
    }

    /// Since when the connection has had no open call; `None` while one is
    /// open (see [`Connection::idle_since`]).
    pub fn idle_since(&self) -> Option<Timestamp> {
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

    /// Graceful shutdown: every call is polled once with
    /// [`Ctx::draining`] true (health watchers send NOT_SERVING and end),
    /// GOAWAY goes out, open calls may finish.
    pub fn shutdown(&mut self) {
        self.draining = true;
        let ids: Vec<u32> = self.calls.iter().map(|c| c.id).collect();
        for id in ids {
            self.drive(id);
        }
        self.conn.shutdown();
    }

    fn position(&self, id: u32) -> Option<usize> {
        self.calls.iter().position(|c| c.id == id)
    }

    /// Takes every event the core has and acts on it.
    fn process_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Headers {
                    id,
                    head,
                    end_stream,
                } => self.on_headers(id, head, end_stream),
                Event::Data {
                    id,
                    data,
                    end_stream,
                } => self.on_data(id, data, end_stream),
                Event::Trailers { id } => self.on_data(id, Bytes::new(), true),
                Event::Reset { id, code } => {
                    self.http_errors.retain(|e| e.0 != id);
                    if let Some(pos) = self.position(id) {
                        let mut call = self.take_call(pos);
                        if let Some(h) = &mut call.handler {
                            h.on_cancel(Cancel::Reset(code));
                        }
                    }
                }
            }
        }
    }

    /// A new request: check it is gRPC, route it, start the call.
    fn on_headers(&mut self, id: u32, head: RequestHead, end_stream: bool) {
        let http_error = if head.method() != b"POST" {
            Some((405, NOT_POST_BODY))
        } else if !is_grpc_content_type(head.header(b"content-type")) {
            Some((415, NOT_GRPC_BODY))
        } else {
            None
        };
        if let Some((status, body)) = http_error {
            return if end_stream {
                self.send_http_error(id, status, body)
            } else {
                self.http_errors.push((id, status, body));
            };
        }
        if let Some(encoding) = head.header(b"grpc-encoding").filter(|e| *e != b"identity") {
            let status = Status::new(
                Code::Unimplemented,
                format!(
                    "Content is compressed with `{}` which isn't supported",
                    String::from_utf8_lossy(encoding)
                ),
            );
            let extra: [(&[u8], &[u8]); 1] = [(b"grpc-accept-encoding", b"identity")];
            return self.trailers_only(id, &status, &extra);
        }
        let Some((service, method, kind)) = self.router.route(head.path()) else {
            let status = Status::new(
                crate::service::UNKNOWN_METHOD,
                format!("unknown method {}", String::from_utf8_lossy(head.path())),
            );
            return self.trailers_only(id, &status, &[]);
        };
        let deadline = head
            .header(b"grpc-timeout")
            .and_then(|v| timeout::parse(v).ok())
            .and_then(|d| self.now.checked_add(d));
        let mut call = Call {
            id,
            kind,
            route: (service, method),
            decoder: Decoder::new(self.max_recv),
            head: None,
            request: None,
            handler: None,
            deadline,
            wake: None,
            meta: ResponseMeta::default(),
            recv_ended: end_stream,
            half_closed: false,
            held: 0,
            reserved: 0,
            parked: 0,
            blocked: false,
        };
        if kind.one_request() {
            // Started once its one message and the half-close are in.
            call.head = Some(Box::new(head));
        } else {
            let mut ctx = Ctx::new(
                self.now,
                self.draining,
                Some(&head),
                &mut call.wake,
                &mut call.meta,
            );
            match self.router.start(service, method, &mut ctx, None) {
                Ok(handler) => call.handler = Some(handler),
                Err(status) => return self.fail_early(id, &call.meta, &status),
            }
            // A bidirectional call's response starts at once (as tonic's):
            // a client may wait for the headers before it sends anything.
            if kind == Kind::Bidi && !send_headers(&mut self.conn, &mut call) {
                return;
            }
        }
        self.calls.push(call);
        self.drive(id);
    }

    /// Request body bytes (or the end of the request).
    fn on_data(&mut self, id: u32, data: Bytes, end_stream: bool) {
        let Some(pos) = self.position(id) else {
            // Not a call (a non-gRPC request, an early error, reset): the
            // bytes are dropped and their credit returned.
            self.conn.release_data(id, data.len());
            if let Some(i) = self.http_errors.iter().position(|e| e.0 == id) {
                if end_stream {
                    let (_, status, body) = self.http_errors.swap_remove(i);
                    self.send_http_error(id, status, body);
                }
            }
            return;
        };
        let call = &mut self.calls[pos];
        call.held += data.len();
        if !data.is_empty() {
            call.decoder.push(data);
        }
        call.recv_ended |= end_stream;
        self.drive(id);
    }

    /// Runs call `id`'s state machine as far as it goes now, then returns
    /// the request credit of what it consumed (unless it is blocked: a
    /// client that outruns its call is held to one stream window).
    fn drive(&mut self, id: u32) {
        let Some(pos) = self.position(id) else {
            return;
        };
        // Bounded: every `Again` consumes input or queues output, and the
        // queue bound stops output.
        loop {
            match self.step(pos) {
                Step::Again => continue,
                Step::Idle => break,
                Step::End(status) => return self.end_call(pos, status),
                Step::Gone => {
                    let mut call = self.take_call(pos);
                    if let Some(h) = &mut call.handler {
                        h.on_cancel(Cancel::Closed);
                    }
                    return;
                }
            }
        }
        self.settle(pos);
    }

    /// Flow control for call `pos` after it ran: a blocked call keeps its
    /// stream credit (backpressure on its client), but what it holds
    /// beyond its reservation is covered from the pool if it can be, and
    /// that connection credit goes back. Otherwise bytes no longer held
    /// first leave the pool (parked ones, then the call's reservation) and
    /// the rest go back to the client as credit; then, if the message being
    /// received needs more than the client may send, that much is reserved
    /// and granted, or the call fails with RESOURCE_EXHAUSTED when the pool
    /// cannot cover it.
    fn settle(&mut self, pos: usize) {
        let Some(call) = self.calls.get_mut(pos) else {
            return;
        };
        let id = call.id;
        if call.blocked {
            let uncovered = call.held.saturating_sub(call.reserved + call.parked);
            if uncovered > 0 && self.budget.try_reserve_large(uncovered) {
                call.parked += uncovered;
                self.conn.release_connection_credit(uncovered);
            }
            return;
        }
        let consumed = call.held.saturating_sub(holding(call));
        call.held -= consumed;
        let unpark = call.parked.min(consumed);
        call.parked -= unpark;
        self.budget.release(unpark);
        self.conn.release_stream_credit(id, unpark);
        let rest = consumed - unpark;
        let pay = call.reserved.min(rest);
        call.reserved -= pay;
        self.budget.release(pay);
        self.conn.release_data(id, rest - pay);
        if call.recv_ended {
            return;
        }
        let need = call
            .decoder
            .missing()
            .saturating_sub(self.conn.recv_credit(id));
        if need == 0 {
            return;
        }
        if self.budget.try_reserve_large(need) {
            call.reserved += need;
            self.conn.grant(id, need);
        } else {
            let status = Status::new(
                Code::ResourceExhausted,
                "server memory budget exhausted; retry later",
            );
            self.end_call(pos, status);
        }
    }

    /// Removes call `pos`: its reservations go back to the pool and the
    /// credit of what it held to the client.
    fn take_call(&mut self, pos: usize) -> Call {
        let call = self.calls.swap_remove(pos);
        // Held bytes covered by a reservation were granted beyond the
        // windows: their credit is not handed back; granted credit the
        // client has not used is taken back from the connection window.
        let unparked = call.held.saturating_sub(call.parked);
        let covered = call.reserved.min(unparked);
        self.budget.release(call.reserved + call.parked);
        self.conn.release_data(call.id, unparked - covered);
        self.conn.revoke_credit(call.reserved - covered);
        call
    }

    /// One step of call `pos`: produce a reply, else take a request
    /// message, else deliver the half-close.
    fn step(&mut self, pos: usize) -> Step {
        let (now, draining) = (self.now, self.draining);
        let Some(call) = self.calls.get_mut(pos) else {
            return Step::Idle;
        };
        if let Some(handler) = &mut call.handler {
            if self.conn.queued_data(call.id) >= SEND_QUEUE {
                // Polled again once the queue drains (`poll_transmit`); a
                // timer it asked for meanwhile would only wake us in vain.
                call.blocked = true;
                call.wake = None;
                return Step::Idle;
            }
            call.blocked = false;
            call.wake = None;
            let mut ctx = Ctx::new(now, draining, None, &mut call.wake, &mut call.meta);
            match handler.poll_next(&mut ctx) {
                Next::Message(reply) => {
                    let len = reply.len().saturating_sub(PREFIX_LEN);
                    if len > self.max_send {
                        return Step::End(Status::new(
                            Code::OutOfRange,
                            format!("Error, encoded message length too large: found {len} bytes, the limit is: {} bytes", self.max_send),
                        ));
                    }
                    // The reply stays in memory until written: it takes its
                    // share of the pool, or the call fails instead.
                    let n = reply.len();
                    let reserved = if n <= self.conn.recv_window_size() {
                        self.budget.try_reserve(n)
                    } else {
                        self.budget.try_reserve_large(n)
                    };
                    if !reserved {
                        return Step::End(Status::new(
                            Code::ResourceExhausted,
                            "server memory budget exhausted; retry later",
                        ));
                    }
                    match self.outbound.iter_mut().find(|(s, _)| *s == call.id) {
                        Some(entry) => entry.1 += n,
                        None => self.outbound.push((call.id, n)),
                    }
                    if !send_headers(&mut self.conn, call) {
                        return Step::Gone;
                    }
                    return match self.conn.send_data(call.id, reply, false) {
                        Ok(()) => Step::Again,
                        Err(_) => Step::Gone,
                    };
                }
                Next::Done(status) => return Step::End(status),
                Next::Pending => {}
            }
        }
        match call.decoder.next_message() {
            Err(status) => return Step::End(status),
            Ok(Some(msg)) => {
                if call.kind.one_request() {
                    if call.request.is_some() {
                        return Step::End(Status::new(
                            crate::service::CARDINALITY,
                            crate::service::CARDINALITY_MESSAGE,
                        ));
                    }
                    call.request = Some(msg);
                    return Step::Again;
                }
                if let Some(handler) = &mut call.handler {
                    let mut ctx = Ctx::new(now, draining, None, &mut call.wake, &mut call.meta);
                    if let Err(status) = handler.on_message(&mut ctx, msg) {
                        return Step::End(status);
                    }
                }
                return Step::Again;
            }
            Ok(None) => {}
        }
        if !call.recv_ended || call.half_closed {
            return Step::Idle;
        }
        call.half_closed = true;
        if call.decoder.is_partial() {
            return Step::End(message::truncated());
        }
        if call.kind.one_request() {
            let Some(request) = call.request.take() else {
                return Step::End(Status::new(Code::Internal, "Missing request message."));
            };
            let head = call.head.take();
            let mut ctx = Ctx::new(
                now,
                draining,
                head.as_deref(),
                &mut call.wake,
                &mut call.meta,
            );
            let (service, method) = call.route;
            return match self.router.start(service, method, &mut ctx, Some(request)) {
                Ok(handler) => {
                    call.handler = Some(handler);
                    if call.kind == Kind::ServerStreaming && !send_headers(&mut self.conn, call) {
                        return Step::Gone;
                    }
                    Step::Again
                }
                Err(status) => Step::End(status),
            };
        }
        if let Some(handler) = &mut call.handler {
            let mut ctx = Ctx::new(now, draining, None, &mut call.wake, &mut call.meta);
            if let Err(status) = handler.on_half_close(&mut ctx) {
                return Step::End(status);
            }
        }
        Step::Again
    }

    /// Ends call `pos` with `status`: trailers (with the handler's trailing
    /// metadata) if the response started, Trailers-Only otherwise.
    fn end_call(&mut self, pos: usize, status: Status) {
        let call = self.take_call(pos);
        if call.meta.headers_sent {
            status.with_trailer_fields(|fields| {
                let mut all: Vec<(&[u8], &[u8])> = fields.to_vec();
                all.extend(call.meta.trailers.iter());
                // A failure means the stream is gone (reset): nothing left to tell.
                let _ = self.conn.send_trailers(call.id, &all);
            });
        } else {
            self.fail_early(call.id, &call.meta, &status);
        }
    }

    /// Trailers-Only answer carrying the handler's metadata (initial and trailing).
    fn fail_early(&mut self, id: u32, meta: &ResponseMeta, status: &Status) {
        let extra: Vec<(&[u8], &[u8])> = meta.headers.iter().chain(meta.trailers.iter()).collect();
        self.trailers_only(id, status, &extra);
    }

    /// `:status 200`, content-type, grpc-status, grpc-message (+ `extra`)
    /// in one HEADERS frame with END_STREAM.
    fn trailers_only(&mut self, id: u32, status: &Status, extra: &[(&[u8], &[u8])]) {
        status.with_trailer_fields(|trailers| {
            let mut fields: Vec<(&[u8], &[u8])> = vec![(b"content-type", CONTENT_TYPE)];
            fields.extend_from_slice(trailers);
            fields.extend_from_slice(extra);
            let _ = self.conn.send_headers(id, 200, &fields, true);
        });
    }

    /// A plain HTTP answer for a request that is not gRPC at all.
    fn send_http_error(&mut self, id: u32, status: u16, body: &'static str) {
        let text: (&[u8], &[u8]) = (b"content-type", b"text/plain; charset=utf-8");
        // RFC 9110 §15.5.6: a 405 MUST carry Allow with the supported methods.
        let allow: (&[u8], &[u8]) = (b"allow", b"POST");
        let fields: &[(&[u8], &[u8])] = if status == 405 {
            &[text, allow]
        } else {
            &[text]
        };
        if self.conn.send_headers(id, status, fields, false).is_ok() {
            let _ = self
                .conn
                .send_data(id, Bytes::from_static(body.as_bytes()), true);
        }
    }
}

/// Lowers `next` to `t` if `t` is earlier.
fn earliest(next: &mut Option<Timestamp>, t: Option<Timestamp>) {
    if let Some(t) = t {
        if next.is_none_or(|n| t < n) {
            *next = Some(t);
        }
    }
}

/// Request bytes `call` holds: its decoder's and a one-request call's
/// message waiting for the half-close.
fn holding(call: &Call) -> usize {
    call.decoder.buffered() + call.request.as_ref().map_or(0, Bytes::len)
}

/// Starts `call`'s response (`:status` 200, content-type, the handler's
/// initial metadata) unless it has started; false if the stream is gone.
///
/// Streaming-response calls start it as soon as the handler is created, as
/// tonic does; unary and client-streaming calls with their one reply, so an
/// early error can still be a Trailers-Only response.
fn send_headers(conn: &mut Connection, call: &mut Call) -> bool {
    if call.meta.headers_sent {
        return true;
    }
    call.meta.headers_sent = true;
    let mut fields: Vec<(&[u8], &[u8])> = vec![(b"content-type", CONTENT_TYPE)];
    fields.extend(call.meta.headers.iter());
    conn.send_headers(call.id, 200, &fields, false).is_ok()
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
    use crate::config::Config;
    use crate::grpc::testwire::*;
    use crate::h2::hpack;
    use crate::proto::echo::{EchoReply, EchoRequest};
    use crate::proto::health::health_check_response::ServingStatus;
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
        now: Timestamp,
        decoder: hpack::Decoder,
        streams: HashMap<u32, Answer>,
        goaway: bool,
    }

    impl Client {
        fn new() -> Client {
            Client::with(Config::default())
        }

        fn with(config: Config) -> Client {
            let router = crate::grpc::services::router(config.max_message_size);
            Client::serving(config, router)
        }

        fn serving(config: Config, router: Router) -> Client {
            let now = Timestamp::from_secs(1000);
            let router = Rc::new(router);
            let mut c = Client {
                session: Session::new(&config.session_limits(), router, now),
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
        assert_eq!(a.field(0, "allow"), Some("POST"));
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
        // Two messages on a unary method: a cardinality violation.
        let mut two = echo_body("one");
        two.extend(echo_body("two"));
        let a = c.unary(3, "/echo.Echo/Reply", &two);
        assert_eq!(a.grpc_status(), Some(Code::Unimplemented.as_i32()));
        assert!(a.data.is_empty());
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
        for _ in 0..100 {
            c.read();
        }
        let answered = ids.iter().filter(|&&id| status(&c, id) == Some(0)).count();
        assert_eq!(answered + refused, 80);
        assert_eq!(c.session.budget.used(), 0);
    }

    #[test]
    fn a_message_larger_than_the_window_is_granted_against_the_pool() {
        let config = Config {
            memory_budget: 1 << 20,
            max_connections: 1,
            max_message_size: 512 << 10,
            ..Config::default()
        };
        let limits = config.session_limits();
        let budget = Budget::new(limits.memory_pool);
        let mut c = Client::with(config.clone());
        let router = Rc::new(crate::grpc::services::router(config.max_message_size));
        c.session = Session::with_budget(&limits, router, budget.clone(), c.now);
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        c.send(&hello);
        // A 400 KiB message announced, 16 KiB of it sent: the rest is
        // reserved and granted at once.
        let text = "x".repeat(400 << 10);
        let body = echo_body(&text);
        c.request(1, "/echo.Echo/Reply", &[], false);
        c.data(1, &body[..16 << 10], false);
        assert!(budget.used() > 100 << 10, "{}", budget.used());
        assert_eq!(c.session.reserved(), budget.used());
        // The client may send all of it (beyond the 256 KiB windows).
        for chunk in body[16 << 10..].chunks(16 << 10) {
            c.data(1, chunk, false);
        }
        c.data(1, &[], true);
        assert!(!c.goaway);
        // (The reply waits for the client's window; the request is gone.)
        c.send(&frame(8, 0, 0, &(1u32 << 20).to_be_bytes()));
        c.send(&frame(8, 0, 1, &(1u32 << 20).to_be_bytes()));
        for _ in 0..20 {
            c.read();
        }
        assert_eq!(c.answer(1).grpc_status(), Some(0));
        assert_eq!(budget.used(), 0);
        // 500 KiB messages need ~260 KiB each beyond the window: three
        // quarters of the 768 KiB pool (the rest stays for small messages)
        // take two; the third call fails with RESOURCE_EXHAUSTED.
        let body = echo_body(&"z".repeat(500 << 10));
        for id in [3, 5, 7] {
            c.request(id, "/echo.Echo/Reply", &[], false);
            c.data(id, &body[..16 << 10], false);
        }
        assert!(!c.streams.contains_key(&5), "still receiving");
        assert_eq!(c.answer(7).grpc_status(), Some(8), "RESOURCE_EXHAUSTED");
        assert!(budget.used() <= limits.memory_pool);
        drop(c);
        assert_eq!(budget.used(), 0, "a dropped session gives it all back");
    }

    /// A bidi call blocked on its send queue keeps its stream credit, but
    /// what it holds moves onto the pool, so the connection's other
    /// streams still get connection credit.
    #[test]
    fn a_blocked_call_does_not_hold_up_the_connection() {
        let (mut c, _log) = probe_client();
        // No window for replies: Chat's queue fills and it blocks.
        c.send(&frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]));
        c.request(1, "/test.Probe/Chat", &[], false);
        let msg = echo_body(&"m".repeat(1000));
        for _ in 0..60 {
            c.data(1, &msg, false);
        }
        let parked = c.session.reserved();
        assert!(parked > 30_000, "{parked}");
        // 60 KiB more on another stream fit the 64 KiB connection window.
        c.request(3, "/echo.Echo/Reply", &[], false);
        c.send(&frame(8, 0, 3, &100_000u32.to_be_bytes()));
        for chunk in echo_body(&"y".repeat(60_000)).chunks(16 << 10) {
            c.data(3, chunk, false);
        }
        c.data(3, &[], true);
        assert!(!c.goaway);
        assert_eq!(c.answer(3).grpc_status(), Some(0));
        // The stalled call ends: its reservations go back.
        c.send(&frame(RST_STREAM, 0, 1, &8u32.to_be_bytes()));
        c.send(&frame(8, 0, 0, &(1u32 << 20).to_be_bytes()));
        c.read();
        assert_eq!(c.session.reserved(), 0);
        assert_eq!(c.session.budget.used(), 0);
    }

    /// hostile `vanished_client_with_a_blocked_reply_is_closed`, at the
    /// session: a Watch whose first answer is stuck behind a zero window
    /// when the client goes away ends its call, and the session closes.
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

    #[test]
    fn watch_of_an_unknown_service_is_service_unknown_and_stays_open() {
        let mut c = Client::new();
        let unknown = framed(&HealthCheckRequest {
            service: "x.Y".into(),
        });
        let a = c.unary(1, "/grpc.health.v1.Health/Watch", &unknown);
        assert!(!a.ended, "watch stays open: {a:?}");
        let r = HealthCheckResponse::decode(a.messages()[0].clone()).unwrap();
        assert_eq!(r.status, ServingStatus::ServiceUnknown as i32);
        assert_eq!(c.session.open_calls(), 1);
        c.session.shutdown();
        c.read();
        let a = c.answer(1);
        assert!(a.ended);
        assert_eq!(a.grpc_status(), Some(0));
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
        for _ in 0..20 {
            c.data(1, &asks, false);
        }
        let queued = c.session.conn.queued_data(1);
        assert!(queued >= SEND_QUEUE, "{queued}");
        assert!(
            queued <= 2 * SEND_QUEUE,
            "one answer past the bound: {queued}"
        );
        let call = &c.session.calls[0];
        assert!(call.blocked, "the call waits for its queue to drain");
        assert_eq!(call.held, asks.len() * 20, "no stream credit went back");
        // The client opens its windows: every question gets its answer.
        let mut grant = frame(SETTINGS, 0, 0, &[0, 4, 0x40, 0, 0, 0]);
        grant.extend(frame(8, 0, 0, &(1u32 << 30).to_be_bytes()));
        c.send(&grant);
        for _ in 0..1000 {
            if c.answer(1).data.len() >= queued * 2000 / 10 {
                break;
            }
            c.read();
        }
        c.data(1, &[], true);
        for _ in 0..1000 {
            if c.answer(1).ended {
                break;
            }
            c.read();
        }
        assert_eq!(c.answer(1).messages().len(), 2000);
        assert_eq!(c.answer(1).grpc_status(), Some(0));
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

    /// A bidi test service that records what its handlers hear.
    mod probe {
        use std::cell::RefCell;
        use std::rc::Rc;

        use bytes::Bytes;

        use crate::grpc::api::{Cancel, Ctx, Kind, Next, RawCall, Service, Status};
        use crate::grpc::message;
        use crate::proto::echo::EchoReply;

        /// What happened to the calls, in order.
        pub type Log = Rc<RefCell<Vec<String>>>;

        pub struct Probe(pub Log);

        impl Service for Probe {
            fn name(&self) -> &'static str {
                "test.Probe"
            }

            fn methods(&self) -> &'static [(&'static str, Kind)] {
                &[("Chat", Kind::Bidi), ("Tick", Kind::ServerStreaming)]
            }

            fn start(
                &self,
                method: usize,
                ctx: &mut Ctx<'_>,
                _: Option<Bytes>,
            ) -> Result<Box<dyn RawCall>, Status> {
                let who = ctx.request_header("x-who").unwrap_or(b"?").to_vec();
                let key = ctx.request_header_bin("x-key-bin").unwrap_or_default();
                self.0.borrow_mut().push(format!(
                    "start {method} {} {key:?}",
                    String::from_utf8_lossy(&who)
                ));
                ctx.set_header("x-hello", b"there")?;
                ctx.set_trailer("x-raw-bin", &[0, 1, 0xFE])?;
                Ok(Box::new(Call {
                    log: Rc::clone(&self.0),
                    ticks: method == 1,
                    pending: 0,
                    closed: false,
                }))
            }
        }

        struct Call {
            log: Log,
            /// Produce forever (the Tick method).
            ticks: bool,
            pending: usize,
            closed: bool,
        }

        impl RawCall for Call {
            fn on_message(&mut self, _: &mut Ctx<'_>, request: Bytes) -> Result<(), Status> {
                if request.is_empty() {
                    return Err(Status::new(crate::status::Code::Aborted, "empty request"));
                }
                self.pending += 1;
                Ok(())
            }

            fn on_half_close(&mut self, _: &mut Ctx<'_>) -> Result<(), Status> {
                self.log.borrow_mut().push("half-close".into());
                self.closed = true;
                Ok(())
            }

            fn poll_next(&mut self, ctx: &mut Ctx<'_>) -> Next<Bytes> {
                if self.ticks {
                    // Asks for a timer it does not need: must not spin a
                    // blocked call.
                    ctx.wake_at(ctx.now());
                }
                if self.ticks || self.pending > 0 {
                    self.pending = self.pending.saturating_sub(1);
                    let reply = EchoReply {
                        message: "x".repeat(1000),
                    };
                    return Next::Message(message::encode(&reply));
                }
                if self.closed {
                    return Next::Done(Status::ok());
                }
                Next::Pending
            }

            fn on_cancel(&mut self, reason: Cancel) {
                self.log.borrow_mut().push(format!("cancel {reason:?}"));
            }
        }
    }

    fn probe_client() -> (Client, probe::Log) {
        let log = probe::Log::default();
        let mut router = crate::grpc::services::router(1 << 20);
        router.add(probe::Probe(Rc::clone(&log)));
        (Client::serving(Config::default(), router), log)
    }

    /// An open stream costs its `Call`, the core's `Stream` and the
    /// handler: all small, so thousands of idle streams fit a board.
    #[test]
    fn an_idle_call_is_small() {
        let call = std::mem::size_of::<Call>();
        let stream = std::mem::size_of::<crate::h2::stream::Stream>();
        assert!(call <= 320, "size_of::<Call>() = {call}");
        assert!(stream <= 256, "size_of::<Stream>() = {stream}");
        let (mut c, _log) = probe_client();
        c.request(1, "/test.Probe/Chat", &[], false);
        let pos = c.session.position(1).unwrap();
        let call = &c.session.calls[pos];
        assert!(call.head.is_none(), "a started call keeps no request head");
        assert_eq!(call.meta.headers.iter().count(), 1);
    }

    #[test]
    fn handlers_see_and_set_metadata() {
        let (mut c, log) = probe_client();
        // "AAH/" is base64 (padded or not) for 00 01 FF.
        c.request(
            1,
            "/test.Probe/Chat",
            &[("x-who", "board"), ("x-key-bin", "AAH/")],
            false,
        );
        c.data(1, &echo_body("a"), true);
        let a = c.answer(1);
        assert!(a.ended);
        assert_eq!(a.field(0, "x-hello"), Some("there"));
        assert_eq!(a.messages().len(), 1);
        // -bin trailers go out base64-encoded, unpadded.
        assert_eq!(a.field(1, "x-raw-bin"), Some("AAH+"));
        assert_eq!(a.grpc_status(), Some(0));
        assert_eq!(log.borrow()[0], "start 0 board [0, 1, 255]");
        assert_eq!(log.borrow()[1], "half-close");
    }

    #[test]
    fn a_handler_error_mid_stream_ends_only_its_call() {
        let (mut c, _log) = probe_client();
        c.request(1, "/test.Probe/Chat", &[], false);
        c.request(3, "/test.Probe/Chat", &[], false);
        c.data(1, &echo_body("a"), false);
        c.data(3, &echo_body("b"), false);
        // An empty message makes the handler fail: after its first reply,
        // stream 1 ends with the handler's status in trailers.
        c.data(1, &echo_body(""), false);
        let a = c.answer(1);
        assert!(a.ended);
        assert_eq!(a.messages().len(), 1);
        assert_eq!(a.grpc_status(), Some(Code::Aborted.as_i32()));
        // Stream 3 goes on.
        c.data(3, &echo_body("c"), true);
        let b = c.answer(3);
        assert_eq!(b.messages().len(), 2);
        assert_eq!(b.grpc_status(), Some(0));
        assert_eq!(c.session.open_calls(), 0);
    }

    #[test]
    fn cancellation_reaches_the_handler() {
        let (mut c, log) = probe_client();
        // Client RST_STREAM.
        c.request(1, "/test.Probe/Chat", &[], false);
        c.send(&frame(RST_STREAM, 0, 1, &8u32.to_be_bytes()));
        assert_eq!(log.borrow().last().unwrap(), "cancel Reset(Cancel)");
        // Deadline.
        c.request(3, "/test.Probe/Chat", &[("grpc-timeout", "10m")], false);
        c.advance(Duration::from_millis(20));
        assert_eq!(log.borrow().last().unwrap(), "cancel Deadline");
        assert_eq!(
            c.answer(3).grpc_status(),
            Some(crate::service::DEADLINE.as_i32())
        );
        // The connection dropped (or the drain over) with a call open.
        c.request(5, "/test.Probe/Chat", &[], false);
        assert_eq!(c.session.open_calls(), 1);
        drop(c);
        assert_eq!(log.borrow().last().unwrap(), "cancel Closed");
    }

    #[test]
    fn a_producer_is_not_polled_past_its_queue_bound() {
        let (mut c, _log) = probe_client();
        // No window: nothing can be written, so the queue fills.
        c.send(&frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]));
        c.request(1, "/test.Probe/Tick", &[], false);
        c.data(1, &echo_body("go"), true);
        let queued = c.session.conn.queued_data(1);
        assert!(
            (SEND_QUEUE..SEND_QUEUE + 1100).contains(&queued),
            "{queued}"
        );
        assert!(
            c.session.poll_timeout().is_none_or(|t| t > c.now),
            "a blocked call asks for no timer"
        );
        for _ in 0..10 {
            c.advance(Duration::from_millis(100));
        }
        assert_eq!(c.session.conn.queued_data(1), queued, "still not polled");
        // The window opens: it produces again.
        c.send(&frame(8, 0, 1, &(100_000u32).to_be_bytes()));
        for _ in 0..5 {
            c.read();
        }
        let written = c.answer(1).data.len();
        assert!(written >= 60_000, "{written}");
        let queued = c.session.conn.queued_data(1);
        assert!(queued < SEND_QUEUE + 1100, "{queued}");
    }
}

#[cfg(test)]
#[path = "session_splits.rs"]
mod splits;
