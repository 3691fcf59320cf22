//! Fuzz target: a whole `lean_grpc::h2::Connection` driven like the blocking
//! driver drives it, with a fuzzed client on the other side.
//!
//! Input layout (see `fuzz/gen-seeds`):
//! * byte 0: configuration — limits (bits 0..5) and whether the client preface
//!   is prepended for the fuzzer (bit 7 clear) or must be in the input;
//! * byte 1: `n`, the number of control bytes that follow;
//! * `n` control bytes, used in turn, one per step: the chunk size to feed
//!   (low nibble) and an extra action (high nibble: advance the clock,
//!   `shutdown()`, EOF, an application reset, skip draining, ...);
//! * the rest: the bytes the client sends (after the preface, if prepended).
//!
//! After every step the events are drained and answered: each request stream
//! gets one of several application behaviours picked from its id (echo the
//! body then trailers, Trailers-Only, a large flow-controlled body, an
//! immediate reset, or no answer), and invalid `send_*` calls are made on
//! purpose; they must fail with an error, not panic.
//!
//! Checked: no panic; everything `poll_transmit` writes is a well-formed frame
//! sequence whose header blocks decode with a client-side HPACK decoder; the
//! output stays within a bound derived from the input and what the
//! application queued; after a GOAWAY with an error code the connection is
//! closed once its output is flushed, and a closed connection writes nothing
//! more; after EOF with every stream reset by the application, the connection
//! is closed.

#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lean_grpc::h2::frame::{kind, Frame, Head, HEAD_LEN};
use lean_grpc::h2::hpack::Decoder;
use lean_grpc::h2::{Connection, ErrorCode, Event, Limits, SendError};
use libfuzzer_sys::fuzz_target;

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Chunk sizes selected by the low nibble of a control byte (0 = all that is left).
const CHUNKS: [usize; 16] = [0, 1, 2, 3, 7, 9, 10, 17, 24, 33, 64, 100, 256, 1000, 4096, 16_393];
/// Clock steps: small ones for ordering, large ones to fire every timer.
const SMALL_STEPS: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(250),
    Duration::from_secs(1),
];
const LARGE_STEPS: [Duration; 4] = [
    Duration::from_secs(3),
    Duration::from_secs(11),
    Duration::from_secs(61),
    Duration::from_secs(3600),
];
/// Size of the large response body (behaviour 2): several windows' worth.
const BIG_BODY: usize = 100_000;
/// Largest single `poll_transmit` result we accept: the core's hard output
/// limit (1 MiB), one transmit budget of DATA (64 KiB) and slack for one step's reactions.
const MAX_TRANSMIT: usize = 2 * 1024 * 1024;

fn limits(config: u8) -> Limits {
    let pick = |bits: u8, table: &[u32]| table[usize::from(bits) % table.len()];
    Limits {
        max_concurrent_streams: pick(config & 3, &[1, 2, 100, 0]),
        max_header_list_size: pick((config >> 2) & 3, &[16_384, 64, 1024, 0]),
        max_local_resets: [3, 0, 100, 1][usize::from((config >> 4) & 3)],
        handshake_timeout: Duration::from_secs(10),
        idle_timeout: (config & 0x40 == 0).then(|| Duration::from_secs(30)),
        keepalive_interval: (config & 0x40 != 0).then(|| Duration::from_secs(5)),
        keepalive_timeout: Duration::from_secs(2),
        initial_window_size: if config & 0x20 == 0 { 65_535 } else { 256 * 1024 },
        max_frame_size: 16_384,
    }
}

/// How the application answers a request stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// Headers now, echo each DATA chunk, trailers at the end of the request.
    Echo,
    /// One HEADERS frame with END_STREAM (gRPC Trailers-Only).
    TrailersOnly,
    /// Headers and a large body at once: flow control must hold it back.
    BigBody,
    /// Reset the stream at once.
    Reset,
    /// Never answer.
    Ignore,
}

fn behaviour(id: u32, seed: u8) -> Behaviour {
    match (id >> 1).wrapping_add(u32::from(seed)) % 5 {
        0 => Behaviour::Echo,
        1 => Behaviour::TrailersOnly,
        2 => Behaviour::BigBody,
        3 => Behaviour::Reset,
        _ => Behaviour::Ignore,
    }
}

/// The fuzzed driver and the client-side view of the output.
struct Harness {
    conn: Connection,
    now: Instant,
    seed: u8,
    /// Streams announced to the application and how it answers them.
    streams: BTreeMap<u32, Behaviour>,
    /// Every stream id ever announced (for the final reset-everything step).
    seen: Vec<u32>,
    /// Output bytes not yet split into frames (a frame may span transmits).
    pending: Vec<u8>,
    /// Header block being reassembled from HEADERS + CONTINUATION.
    block: Option<(u32, Vec<u8>)>,
    /// Streams we have written a response head on.
    responded: Vec<u32>,
    /// The largest frame we may write: the largest MAX_FRAME_SIZE the client
    /// input advertises anywhere (at least the default 16,384).
    max_frame: u32,
    /// The client's HPACK decoder for our responses.
    hpack: Decoder,
    /// Totals for the output bound.
    input_bytes: usize,
    output_bytes: usize,
    app_bytes: usize,
    clock_steps: usize,
    /// A GOAWAY with an error code was written.
    error_goaway: bool,
}

impl Harness {
    fn feed(&mut self, chunk: &[u8]) {
        self.input_bytes += chunk.len();
        let before = self.conn.is_closed();
        self.conn.handle_input(chunk, self.now);
        if before {
            assert!(self.conn.is_closed(), "a closed connection reopened");
        }
    }

    fn advance(&mut self, d: Duration) {
        self.clock_steps += 1;
        self.now += d;
        if self.conn.poll_timeout().is_some_and(|t| t <= self.now) {
            self.conn.handle_timeout(self.now);
        }
    }

    /// `poll_transmit` once, and check what came out.
    fn transmit(&mut self) {
        let was_closed = self.conn.is_closed();
        let mut out = Vec::new();
        self.conn.poll_transmit(&mut out);
        assert!(out.len() <= MAX_TRANSMIT, "one poll_transmit wrote {} bytes", out.len());
        if was_closed {
            assert!(out.is_empty(), "a closed connection wrote {} bytes", out.len());
        }
        self.output_bytes += out.len();
        // Protocol reactions are at most a few times the input (a 9-byte PING
        // gets a 17-byte ACK; a DATA frame up to two WINDOW_UPDATEs; ...);
        // the rest is what the application asked for or timers.
        let bound = 64 * 1024 + 8 * self.input_bytes + 2 * self.app_bytes + 64 * self.clock_steps;
        assert!(
            self.output_bytes <= bound,
            "output {} over the bound {bound} (input {}, app {}, clock steps {})",
            self.output_bytes,
            self.input_bytes,
            self.app_bytes,
            self.clock_steps
        );
        self.pending.extend_from_slice(&out);
        self.check_frames();
        if self.error_goaway {
            assert!(self.conn.is_closed(), "GOAWAY with an error sent, but not closed");
            assert!(self.conn.poll_timeout().is_none(), "a closed connection wants a timer");
        }
    }

    /// Splits complete output frames off `pending` and checks each.
    fn check_frames(&mut self) {
        let mut at = 0;
        while let Some(head) = self.pending.get(at..).and_then(Head::parse) {
            let end = at + HEAD_LEN + head.length as usize;
            let Some(payload) = self.pending.get(at + HEAD_LEN..end) else {
                break;
            };
            let payload = payload.to_vec();
            at = end;
            self.check_frame(&head, &payload);
        }
        self.pending.drain(..at);
    }

    fn check_frame(&mut self, head: &Head, payload: &[u8]) {
        assert!(head.length <= self.max_frame, "frame over the peer's MAX_FRAME_SIZE: {head:?}");
        let frame = match Frame::parse(head, payload) {
            Ok(f) => f,
            Err(e) => panic!("we wrote a frame that does not parse: {head:?}: {e}"),
        };
        if let Some((id, _)) = &self.block {
            assert!(
                head.kind == kind::CONTINUATION && head.stream_id == *id,
                "frame {head:?} inside our header block on stream {id}"
            );
        }
        match frame {
            Frame::Headers(h) => {
                assert!(h.stream_id % 2 == 1, "HEADERS on an even stream");
                assert!(self.seen.contains(&h.stream_id), "HEADERS on a stream never opened");
                self.block = Some((h.stream_id, h.fragment.to_vec()));
                if h.end_headers {
                    self.finish_block();
                }
            }
            Frame::Continuation(c) => {
                let Some((_, block)) = self.block.as_mut() else {
                    panic!("CONTINUATION without HEADERS");
                };
                block.extend_from_slice(c.fragment);
                if c.end_headers {
                    self.finish_block();
                }
            }
            Frame::Data(d) => {
                assert!(self.seen.contains(&d.stream_id), "DATA on a stream never opened");
            }
            Frame::GoAway(g) if g.code != ErrorCode::NoError => self.error_goaway = true,
            Frame::Unknown { .. } => panic!("we wrote an unknown frame type {}", head.kind),
            _ => {}
        }
    }

    fn finish_block(&mut self) {
        let Some((id, block)) = self.block.take() else {
            return;
        };
        // The first block on a stream is the response head (`:status` first);
        // a later one is trailers (no pseudo-headers).
        let first = !self.responded.contains(&id);
        let mut names = Vec::new();
        let r = self.hpack.decode(&block, &mut |n, _| names.push(n.to_vec()));
        assert_eq!(r, Ok(()), "our header block does not decode: {block:02x?}");
        if first {
            assert_eq!(names.first().map(Vec::as_slice), Some(&b":status"[..]), "response head without :status first");
            self.responded.push(id);
        } else {
            assert!(names.iter().all(|n| !n.starts_with(b":")), "pseudo-header in trailers");
        }
    }

    /// Drains and answers events.
    fn events(&mut self) {
        // Bounded: each event came from input already fed.
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                Event::Headers { id, head, end_stream } => {
                    assert!(id % 2 == 1 && id != 0, "request on stream {id}");
                    assert!(!self.streams.contains_key(&id), "stream {id} announced twice");
                    assert!(!self.seen.contains(&id), "stream id {id} reused");
                    // Exercise the accessors.
                    let _ = (head.method(), head.path(), head.scheme(), head.authority());
                    let _ = head.header(b"content-type");
                    assert!(head.fields().all(|(n, _)| !n.starts_with(b":")));
                    self.seen.push(id);
                    let b = behaviour(id, self.seed);
                    self.streams.insert(id, b);
                    self.answer_headers(id, b, end_stream);
                }
                Event::Data { id, data, end_stream } => {
                    assert!(self.seen.contains(&id), "DATA event for unknown stream {id}");
                    if self.streams.get(&id) == Some(&Behaviour::Echo) {
                        self.app_bytes += data.len() + 9;
                        let r = self.conn.send_data(id, data, false);
                        self.expect_ok(id, r);
                        if end_stream {
                            self.trailers(id);
                        }
                    }
                }
                Event::Trailers { id } => {
                    assert!(self.seen.contains(&id), "trailers for unknown stream {id}");
                    if self.streams.get(&id) == Some(&Behaviour::Echo) {
                        self.trailers(id);
                    }
                }
                Event::Reset { id, .. } => {
                    assert!(self.seen.contains(&id), "reset of unknown stream {id}");
                    self.streams.remove(&id);
                    // The stream is gone: every send must be refused.
                    assert!(self.conn.send_data(id, Bytes::new(), true).is_err());
                    assert!(self.conn.send_trailers(id, &[]).is_err());
                }
            }
        }
    }

    /// A send on a stream the application believes open: it may fail only
    /// because the stream or connection went away meanwhile (events not yet polled).
    fn expect_ok(&self, id: u32, r: Result<(), SendError>) {
        if let Err(e) = r {
            assert_ne!(e, SendError::InvalidState, "valid send on stream {id} refused: {e}");
        }
    }

    fn trailers(&mut self, id: u32) {
        self.app_bytes += 64;
        let r = self.conn.send_trailers(id, &[(b"grpc-status", b"0")]);
        self.expect_ok(id, r);
        // Ending twice is a state error, never a panic.
        assert!(self.conn.send_trailers(id, &[]).is_err());
        self.streams.remove(&id);
    }

    fn answer_headers(&mut self, id: u32, b: Behaviour, end_stream: bool) {
        let fields: [(&[u8], &[u8]); 1] = [(b"content-type", b"application/grpc")];
        // DATA before HEADERS is refused.
        assert_eq!(self.conn.send_data(id, Bytes::from_static(b"x"), false), Err(SendError::InvalidState));
        match b {
            Behaviour::Echo => {
                self.app_bytes += 64;
                let r = self.conn.send_headers(id, 200, &fields, false);
                self.expect_ok(id, r);
                // A second HEADERS is refused.
                assert!(self.conn.send_headers(id, 200, &[], false).is_err());
                if end_stream {
                    self.trailers(id);
                }
            }
            Behaviour::TrailersOnly => {
                self.app_bytes += 128;
                let r = self.conn.send_headers(
                    id,
                    200,
                    &[(b"content-type", b"application/grpc"), (b"grpc-status", b"12"), (b"grpc-message", b"no%20such%20method")],
                    true,
                );
                self.expect_ok(id, r);
                assert!(self.conn.send_data(id, Bytes::new(), true).is_err());
                self.streams.remove(&id);
            }
            Behaviour::BigBody => {
                self.app_bytes += 64 + BIG_BODY + 9 * (BIG_BODY / 16 + 1);
                let r = self.conn.send_headers(id, 200, &fields, false);
                self.expect_ok(id, r);
                let r = self.conn.send_data(id, Bytes::from(vec![0x5a; BIG_BODY]), true);
                self.expect_ok(id, r);
                self.streams.remove(&id);
            }
            Behaviour::Reset => {
                self.app_bytes += 16;
                self.conn.reset(id, ErrorCode::Cancel);
                self.streams.remove(&id);
                assert_eq!(self.conn.send_headers(id, 200, &fields, false).map_err(|_| ()), Err(()));
            }
            Behaviour::Ignore => {}
        }
    }
}

/// The largest valid SETTINGS_MAX_FRAME_SIZE in any SETTINGS frame of the
/// client's byte stream (preface included), or the default.
fn peer_max_frame(stream: &[u8]) -> u32 {
    let mut max = 16_384;
    let mut b = stream.strip_prefix(PREFACE).unwrap_or(&[]);
    while let Some(head) = Head::parse(b) {
        let Some(payload) = b.get(HEAD_LEN..HEAD_LEN + head.length as usize) else {
            break;
        };
        if head.kind == kind::SETTINGS {
            for p in payload.chunks_exact(6) {
                let v = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
                if p[..2] == [0, 5] && v <= 0x00ff_ffff {
                    max = max.max(v);
                }
            }
        }
        b = &b[HEAD_LEN + head.length as usize..];
    }
    max
}

fuzz_target!(|data: &[u8]| {
    let [config, n, rest @ ..] = data else {
        return;
    };
    let n = usize::from(*n).min(rest.len());
    let (control, client) = rest.split_at(n);
    let mut stream = Vec::with_capacity(PREFACE.len() + client.len());
    if config & 0x80 == 0 {
        stream.extend_from_slice(PREFACE);
    }
    stream.extend_from_slice(client);

    let start = Instant::now();
    let mut h = Harness {
        conn: Connection::new(limits(*config), start),
        now: start,
        seed: control.first().copied().unwrap_or(0),
        streams: BTreeMap::new(),
        seen: Vec::new(),
        pending: Vec::new(),
        block: None,
        responded: Vec::new(),
        max_frame: peer_max_frame(&stream),
        hpack: Decoder::new(usize::MAX, usize::MAX),
        input_bytes: 0,
        output_bytes: 0,
        app_bytes: 0,
        clock_steps: 0,
        error_goaway: false,
    };
    let mut input = &stream[..];
    let mut step = 0usize;
    // Each step consumes at least one input byte or one control byte.
    while !input.is_empty() {
        let c = control.get(step % control.len().max(1)).copied().unwrap_or(0);
        step += 1;
        let size = match CHUNKS[usize::from(c & 0x0f)] {
            0 => input.len(),
            s => s.min(input.len()),
        };
        let (chunk, after) = input.split_at(size);
        input = after;
        let action = c >> 4;
        h.feed(chunk);
        let mut drain_out = true;
        let mut drain_events = true;
        match action {
            8 => h.advance(SMALL_STEPS[usize::from(c) % 4]),
            9 => h.advance(LARGE_STEPS[usize::from(c) % 4]),
            10 => h.conn.shutdown(),
            11 => drain_out = false,
            12 => drain_events = false,
            13 => {
                if let Some(t) = h.conn.poll_timeout() {
                    h.clock_steps += 1;
                    h.now = h.now.max(t);
                    h.conn.handle_timeout(h.now);
                }
            }
            14 => {
                if let Some((&id, _)) = h.streams.iter().nth(usize::from(c) % 3) {
                    h.app_bytes += 16;
                    h.conn.reset(id, ErrorCode::Cancel);
                    h.streams.remove(&id);
                }
            }
            15 => h.conn.handle_read_closed(),
            _ => {}
        }
        if drain_events {
            h.events();
        }
        if drain_out {
            // Flush like a driver with a fast socket, until nothing more comes
            // (each call writes at most one budget of DATA).
            for _ in 0..64 {
                let before = h.output_bytes;
                h.transmit();
                if h.output_bytes == before {
                    break;
                }
            }
        }
    }
    h.events();
    h.transmit();

    // Liveness: EOF, the application drops every stream, output flushed:
    // nothing is left to wait for, so the connection must be closed.
    h.conn.handle_read_closed();
    h.events();
    for id in h.seen.clone() {
        h.conn.reset(id, ErrorCode::Cancel);
    }
    h.app_bytes += 16 * h.seen.len();
    h.events();
    h.transmit();
    assert!(h.conn.is_closed(), "EOF and all streams reset, yet not closed: {:?}", h.conn);
    assert_eq!(h.conn.open_streams(), 0);
});
