//! Shared by the `connection` and `grpc_session` targets: the input layout
//! (configuration byte, control bytes, client bytes) and a client-side
//! checker for everything the server writes.

#![allow(dead_code)] // each target uses a different part

use lean_grpc::h2::frame::{kind, Frame, Head, HEAD_LEN};
use lean_grpc::h2::hpack::Decoder;
use lean_grpc::h2::ErrorCode;
use std::time::Duration;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Chunk sizes selected by the low nibble of a control byte (0 = all that is left).
pub const CHUNKS: [usize; 16] = [
    0, 1, 2, 3, 7, 9, 10, 17, 24, 33, 64, 100, 256, 1000, 4096, 16_393,
];
/// Clock steps: small ones for ordering, large ones to fire every timer.
pub const SMALL_STEPS: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(250),
    Duration::from_secs(1),
];
/// See [`SMALL_STEPS`].
pub const LARGE_STEPS: [Duration; 4] = [
    Duration::from_secs(3),
    Duration::from_secs(11),
    Duration::from_secs(61),
    Duration::from_secs(3600),
];
/// Largest single `poll_transmit` result we accept: the core's hard output
/// limit (1 MiB), one transmit budget of DATA (64 KiB) and slack for one
/// step's reactions.
pub const MAX_TRANSMIT: usize = 2 * 1024 * 1024;

/// The split input: `[config, n, control[n], client bytes...]`; the client
/// bytes get the preface prepended unless bit 7 of `config` is set.
pub struct Input<'a> {
    pub config: u8,
    pub control: &'a [u8],
    pub stream: Vec<u8>,
}

impl<'a> Input<'a> {
    pub fn split(data: &'a [u8]) -> Option<Input<'a>> {
        let [config, n, rest @ ..] = data else {
            return None;
        };
        let n = usize::from(*n).min(rest.len());
        let (control, client) = rest.split_at(n);
        let mut stream = Vec::with_capacity(PREFACE.len() + client.len());
        if config & 0x80 == 0 {
            stream.extend_from_slice(PREFACE);
        }
        stream.extend_from_slice(client);
        Some(Input {
            config: *config,
            control,
            stream,
        })
    }

    /// The control byte for step `step` (0 when there are none: feed everything).
    pub fn control(&self, step: usize) -> u8 {
        self.control
            .get(step % self.control.len().max(1))
            .copied()
            .unwrap_or(0)
    }
}

/// The chunk size a control byte asks for, given what is left.
pub fn chunk_size(c: u8, left: usize) -> usize {
    match CHUNKS[usize::from(c & 0x0f)] {
        0 => left,
        s => s.min(left),
    }
}

/// The largest valid SETTINGS_MAX_FRAME_SIZE in any SETTINGS frame of the
/// client's byte stream, or the default 16,384: no frame we write may be larger.
pub fn peer_max_frame(stream: &[u8]) -> u32 {
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

/// The client's view of the server's output: splits it into frames and
/// checks each one.
pub struct OutputChecker {
    /// Output bytes not yet split into frames (a frame may span transmits).
    pending: Vec<u8>,
    /// Header block being reassembled from HEADERS + CONTINUATION.
    block: Option<(u32, Vec<u8>)>,
    /// Streams we have written a response head on.
    responded: Vec<u32>,
    /// The client's HPACK decoder for our header blocks.
    hpack: Decoder,
    /// See [`peer_max_frame`].
    max_frame: u32,
    /// A GOAWAY with an error code was written.
    pub error_goaway: bool,
    /// Streams DATA was written on, for the caller to check.
    pub data_streams: Vec<u32>,
    /// Total bytes written.
    pub total: usize,
    /// The client's side of flow control, from the bytes it sent.
    flow: ClientFlow,
}

/// What the client's frames allow the server to send (RFC 9113 §6.9): fed
/// the client bytes the server has processed, in order, before each check.
/// A stream's window is the current SETTINGS_INITIAL_WINDOW_SIZE plus its
/// WINDOW_UPDATEs minus the DATA sent on it (a SETTINGS change moves every
/// stream's window by the difference, §6.9.2, so this holds for streams
/// opened before or after the change).
struct ClientFlow {
    /// Client bytes not yet split into frames (the preface first).
    buf: Vec<u8>,
    preface_left: usize,
    initial_window: i64,
    max_frame: u32,
    conn_credit: i64,
    /// Per stream: WINDOW_UPDATE increments minus DATA sent.
    streams: std::collections::BTreeMap<u32, i64>,
    /// Per stream: the request body the client sent (padding removed), and
    /// whether a DATA frame with END_STREAM ended it.
    bodies: std::collections::BTreeMap<u32, (Vec<u8>, bool)>,
}

impl ClientFlow {
    fn feed(&mut self, bytes: &[u8]) {
        let skip = self.preface_left.min(bytes.len());
        self.preface_left -= skip;
        self.buf.extend_from_slice(&bytes[skip..]);
        let mut at = 0;
        while let Some(head) = self.buf.get(at..).and_then(Head::parse) {
            let end = at + HEAD_LEN + head.length as usize;
            let Some(payload) = self.buf.get(at + HEAD_LEN..end) else {
                break;
            };
            match head.kind {
                kind::SETTINGS if head.flags & 1 == 0 => {
                    for p in payload.chunks_exact(6) {
                        let v = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
                        match u16::from_be_bytes([p[0], p[1]]) {
                            4 => self.initial_window = i64::from(v),
                            5 => self.max_frame = v,
                            _ => {}
                        }
                    }
                }
                kind::DATA if head.stream_id != 0 => {
                    let body = if head.flags & 0x8 != 0 {
                        payload.split_first().and_then(|(&pad, rest)| {
                            rest.get(..rest.len().checked_sub(usize::from(pad))?)
                        })
                    } else {
                        Some(payload)
                    };
                    let entry = self.bodies.entry(head.stream_id).or_default();
                    if let (Some(body), false) = (body, entry.1) {
                        entry.0.extend_from_slice(body);
                        entry.1 = head.flags & 0x1 != 0;
                    }
                }
                kind::WINDOW_UPDATE if payload.len() == 4 => {
                    let inc = i64::from(
                        u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                            & 0x7fff_ffff,
                    );
                    if head.stream_id == 0 {
                        self.conn_credit += inc;
                    } else {
                        *self.streams.entry(head.stream_id).or_default() += inc;
                    }
                }
                _ => {}
            }
            at = end;
        }
        self.buf.drain(..at);
    }

    /// The server wrote DATA of flow length `len` on `id`.
    fn sent(&mut self, id: u32, len: usize) {
        let len = len as i64;
        assert!(
            len <= self.max_frame as i64,
            "DATA of {len} bytes over the peer's current MAX_FRAME_SIZE {}",
            self.max_frame
        );
        let stream = self.streams.entry(id).or_default();
        assert!(
            len <= self.initial_window + *stream,
            "DATA of {len} bytes on stream {id} beyond its window {} (§6.9.1)",
            self.initial_window + *stream
        );
        assert!(
            len <= self.conn_credit,
            "DATA of {len} bytes beyond the connection window {} (§6.9.1)",
            self.conn_credit
        );
        *stream -= len;
        self.conn_credit -= len;
    }
}

impl OutputChecker {
    pub fn new(max_frame: u32) -> OutputChecker {
        OutputChecker {
            pending: Vec::new(),
            block: None,
            responded: Vec::new(),
            hpack: Decoder::new(usize::MAX, usize::MAX),
            max_frame,
            error_goaway: false,
            data_streams: Vec::new(),
            total: 0,
            flow: ClientFlow {
                buf: Vec::new(),
                preface_left: PREFACE.len(),
                initial_window: 65_535,
                max_frame: 16_384,
                conn_credit: 65_535,
                streams: std::collections::BTreeMap::new(),
                bodies: std::collections::BTreeMap::new(),
            },
        }
    }

    /// The request body the client sent on `id` so far, and whether it ended.
    pub fn client_body(&self, id: u32) -> (&[u8], bool) {
        self.flow
            .bodies
            .get(&id)
            .map_or((&[][..], false), |(b, end)| (b.as_slice(), *end))
    }

    /// Client bytes the server processed (call before `handle_input`; not
    /// after EOF, nor for input a closed server ignores).
    pub fn client_sent(&mut self, bytes: &[u8]) {
        self.flow.feed(bytes);
    }

    /// Checks the bytes one `poll_transmit` wrote.
    pub fn push(&mut self, out: &[u8]) {
        assert!(
            out.len() <= MAX_TRANSMIT,
            "one poll_transmit wrote {} bytes",
            out.len()
        );
        self.total += out.len();
        self.pending.extend_from_slice(out);
        let mut at = 0;
        while let Some(head) = self.pending.get(at..).and_then(Head::parse) {
            let end = at + HEAD_LEN + head.length as usize;
            let Some(payload) = self.pending.get(at + HEAD_LEN..end) else {
                break;
            };
            let payload = payload.to_vec();
            at = end;
            self.frame(&head, &payload);
        }
        self.pending.drain(..at);
    }

    fn frame(&mut self, head: &Head, payload: &[u8]) {
        assert!(
            head.length <= self.max_frame,
            "frame over the peer's MAX_FRAME_SIZE: {head:?}"
        );
        let frame = match Frame::parse(head, payload) {
            Ok(f) => f,
            Err(e) => panic!("we wrote a frame that does not parse: {head:?}: {e}"),
        };
        if TRACE.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("server wrote {frame:?}");
        }
        if let Some((id, _)) = &self.block {
            assert!(
                head.kind == kind::CONTINUATION && head.stream_id == *id,
                "frame {head:?} inside our header block on stream {id}"
            );
        }
        match frame {
            Frame::Headers(h) => {
                // (Not necessarily a stream the application saw: the core
                // answers a too-large header list with a 431 itself.)
                assert!(h.stream_id % 2 == 1, "HEADERS on an even stream");
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
                assert!(d.stream_id % 2 == 1, "DATA on an even stream");
                self.flow.sent(d.stream_id, d.flow_len as usize);
                if !self.data_streams.contains(&d.stream_id) {
                    self.data_streams.push(d.stream_id);
                }
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
        let r = self
            .hpack
            .decode(&block, &mut |n, _| names.push(n.to_vec()));
        assert_eq!(r, Ok(()), "our header block does not decode: {block:02x?}");
        if first {
            assert_eq!(
                names.first().map(Vec::as_slice),
                Some(&b":status"[..]),
                "response head without :status first"
            );
            self.responded.push(id);
        } else {
            assert!(
                names.iter().all(|n| !n.starts_with(b":")),
                "pseudo-header in trailers"
            );
        }
    }
}

static TRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets the crate's log level once: off while fuzzing (fast), or what
/// `FUZZ_LOG` says (`debug` shows the core's reasons when reproducing a crash).
/// `FUZZ_TRACE` set: print every frame the server writes to stderr.
pub fn init_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        TRACE.store(
            std::env::var_os("FUZZ_TRACE").is_some(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let level = std::env::var("FUZZ_LOG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(lean_grpc::log::Level::Off);
        lean_grpc::log::set_level(level);
    });
}
