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
use std::time::Duration;

use lean_grpc::h2::Timestamp;

use bytes::Bytes;
use lean_grpc::h2::{Connection, ErrorCode, Event, Limits, SendError};
use libfuzzer_sys::fuzz_target;

mod common;
use common::{chunk_size, peer_max_frame, Input, OutputChecker, LARGE_STEPS, SMALL_STEPS};

/// Size of the large response body (behaviour 2): several windows' worth.
const BIG_BODY: usize = 100_000;
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
        initial_window_size: if config & 0x20 == 0 {
            65_535
        } else {
            256 * 1024
        },
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
    now: Timestamp,
    seed: u8,
    /// Streams announced to the application and how it answers them.
    streams: BTreeMap<u32, Behaviour>,
    /// Every stream id ever announced (for the final reset-everything step).
    seen: Vec<u32>,
    /// Checks everything written.
    out: OutputChecker,
    /// Totals for the output bound.
    input_bytes: usize,
    app_bytes: usize,
    clock_steps: usize,
    /// `handle_read_closed` was called: the server reads nothing more.
    eof: bool,
    /// Request body bytes delivered per stream.
    received: BTreeMap<u32, usize>,
}

impl Harness {
    fn feed(&mut self, chunk: &[u8]) {
        self.input_bytes += chunk.len();
        if !self.eof {
            self.out.client_sent(chunk);
        }
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

    /// `poll_transmit` once, and check what came out; returns the byte count.
    fn transmit(&mut self) -> usize {
        let was_closed = self.conn.is_closed();
        let mut out = Vec::new();
        self.conn.poll_transmit(&mut out);
        if was_closed {
            assert!(
                out.is_empty(),
                "a closed connection wrote {} bytes",
                out.len()
            );
        }
        self.out.push(&out);
        for id in &self.out.data_streams {
            assert!(
                self.seen.contains(id),
                "DATA on stream {id}, never announced"
            );
        }
        // Protocol reactions are at most a few times the input (a 9-byte PING
        // gets a 17-byte ACK; a DATA frame up to two WINDOW_UPDATEs; ...);
        // the rest is what the application asked for, or timers.
        let bound = 64 * 1024 + 8 * self.input_bytes + 2 * self.app_bytes + 64 * self.clock_steps;
        assert!(
            self.out.total <= bound,
            "output {} over the bound {bound} (input {}, app {}, clock steps {})",
            self.out.total,
            self.input_bytes,
            self.app_bytes,
            self.clock_steps
        );
        if self.out.error_goaway {
            assert!(
                self.conn.is_closed(),
                "GOAWAY with an error sent, but not closed"
            );
            assert!(
                self.conn.poll_timeout().is_none(),
                "a closed connection wants a timer"
            );
        }
        out.len()
    }

    /// Drains and answers events.
    fn events(&mut self) {
        // Bounded: each event came from input already fed.
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                Event::Headers {
                    id,
                    head,
                    end_stream,
                } => {
                    assert!(id % 2 == 1 && id != 0, "request on stream {id}");
                    assert!(
                        !self.streams.contains_key(&id),
                        "stream {id} announced twice"
                    );
                    // §5.1.1: new stream ids only ever increase.
                    assert!(
                        self.seen.iter().all(|&s| s < id),
                        "stream id {id} not above {:?}",
                        self.seen.last()
                    );
                    // Exercise the accessors.
                    let _ = (head.method(), head.path(), head.scheme(), head.authority());
                    let _ = head.header(b"content-type");
                    assert!(head.fields().all(|(n, _)| !n.starts_with(b":")));
                    self.seen.push(id);
                    let b = behaviour(id, self.seed);
                    self.streams.insert(id, b);
                    self.answer_headers(id, b, end_stream);
                }
                Event::Data {
                    id,
                    data,
                    end_stream,
                } => {
                    assert!(
                        self.seen.contains(&id),
                        "DATA event for unknown stream {id}"
                    );
                    // The body arrives intact: the events are the client's
                    // DATA payloads, in order, padding removed, whatever the
                    // chunking; END_STREAM exactly at its end.
                    let at = self.received.entry(id).or_default();
                    let (sent, ended) = self.out.client_body(id);
                    assert_eq!(
                        sent.get(*at..*at + data.len()),
                        Some(&data[..]),
                        "stream {id}: body bytes {}..{} differ from what the client sent",
                        *at,
                        *at + data.len()
                    );
                    *at += data.len();
                    if end_stream {
                        assert!(ended && *at == sent.len(), "stream {id}: END_STREAM early");
                    }
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
            assert_ne!(
                e,
                SendError::InvalidState,
                "valid send on stream {id} refused: {e}"
            );
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
        // DATA before HEADERS is refused (InvalidState, or the stream or
        // connection is already gone).
        assert!(self
            .conn
            .send_data(id, Bytes::from_static(b"x"), false)
            .is_err());
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
                    &[
                        (b"content-type", b"application/grpc"),
                        (b"grpc-status", b"12"),
                        (b"grpc-message", b"no%20such%20method"),
                    ],
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
                let r = self
                    .conn
                    .send_data(id, Bytes::from(vec![0x5a; BIG_BODY]), true);
                self.expect_ok(id, r);
                self.streams.remove(&id);
            }
            Behaviour::Reset => {
                self.app_bytes += 16;
                self.conn.reset(id, ErrorCode::Cancel);
                self.streams.remove(&id);
                assert_eq!(
                    self.conn
                        .send_headers(id, 200, &fields, false)
                        .map_err(|_| ()),
                    Err(())
                );
            }
            Behaviour::Ignore => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    common::init_log();
    let Some(input) = Input::split(data) else {
        return;
    };

    // The core's clock is the driver's: any starting timestamp will do.
    let start = Timestamp::from_secs(1);
    let mut h = Harness {
        conn: Connection::new(limits(input.config), start),
        now: start,
        seed: input.control(0),
        streams: BTreeMap::new(),
        seen: Vec::new(),
        out: OutputChecker::new(peer_max_frame(&input.stream)),
        input_bytes: 0,
        app_bytes: 0,
        clock_steps: 0,
        eof: false,
        received: BTreeMap::new(),
    };
    let mut left = &input.stream[..];
    let mut step = 0usize;
    // Each step consumes at least one input byte.
    while !left.is_empty() {
        let c = input.control(step);
        step += 1;
        let (chunk, after) = left.split_at(chunk_size(c, left.len()));
        left = after;
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
            15 => {
                h.eof = true;
                h.conn.handle_read_closed();
            }
            _ => {}
        }
        if drain_events {
            h.events();
        }
        if drain_out {
            // Flush like a driver with a fast socket, until nothing more comes
            // (each call writes at most one budget of DATA).
            for _ in 0..64 {
                if h.transmit() == 0 {
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
    assert!(
        h.conn.is_closed(),
        "EOF and all streams reset, yet not closed: {:?}",
        h.conn
    );
    assert_eq!(h.conn.open_streams(), 0);
});
