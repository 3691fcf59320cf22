//! A scripted client: frames built by hand, fed to a `Connection`, and the
//! exact frames that come back checked. One test per RFC rule we enforce.

use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::h2::frame::{kind, Head, HEAD_LEN};
use crate::h2::hpack;

const MAX_WINDOW_U32: u32 = 0x7fff_ffff;

fn limits() -> Limits {
    Limits {
        max_concurrent_streams: 4,
        max_header_list_size: 1024,
        max_local_resets: 3,
        handshake_timeout: Duration::from_secs(10),
        idle_timeout: Some(Duration::from_secs(300)),
        keepalive_interval: None,
        keepalive_timeout: Duration::from_secs(20),
        initial_window_size: 65_535,
        max_frame_size: 16_384,
    }
}

/// One frame as it came out of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Out {
    kind: u8,
    flags: u8,
    id: u32,
    payload: Vec<u8>,
}

impl Out {
    fn code(&self) -> u32 {
        let p = match self.kind {
            kind::RST_STREAM => &self.payload[..4],
            kind::GOAWAY => &self.payload[4..8],
            k => panic!("frame type {k} has no error code"),
        };
        u32::from_be_bytes(p.try_into().unwrap())
    }
    fn u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }
}

/// Builds one frame.
fn frame(kind: u8, flags: u8, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    Head {
        length: payload.len() as u32,
        kind,
        flags,
        stream_id: id,
    }
    .encode(&mut v);
    v.extend_from_slice(payload);
    v
}

/// RFC 7541 §6.2.2 literal field without indexing, new name, no Huffman:
/// 0x00, name length, name, value length, value (lengths < 127).
fn literal_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in fields {
        b.push(0);
        b.push(n.len() as u8);
        b.extend_from_slice(n.as_bytes());
        b.push(v.len() as u8);
        b.extend_from_slice(v.as_bytes());
    }
    b
}

const REQUEST: &[(&str, &str)] = &[
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/echo.Echo/Reply"),
    (":authority", "localhost"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
];

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

fn headers(id: u32, flags: u8, fields: &[(&str, &str)]) -> Vec<u8> {
    frame(kind::HEADERS, flags, id, &literal_block(fields))
}

fn request(id: u32, end_stream: bool) -> Vec<u8> {
    headers(
        id,
        END_HEADERS | if end_stream { END_STREAM } else { 0 },
        REQUEST,
    )
}

fn data(id: u32, end_stream: bool, payload: &[u8]) -> Vec<u8> {
    frame(
        kind::DATA,
        if end_stream { END_STREAM } else { 0 },
        id,
        payload,
    )
}

fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in params {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(kind::SETTINGS, 0, 0, &p)
}

fn window_update(id: u32, inc: u32) -> Vec<u8> {
    frame(kind::WINDOW_UPDATE, 0, id, &inc.to_be_bytes())
}

fn parse_frames(mut b: &[u8]) -> Vec<Out> {
    let mut v = Vec::new();
    while let Some(h) = Head::parse(b) {
        let end = 9 + h.length as usize;
        v.push(Out {
            kind: h.kind,
            flags: h.flags,
            id: h.stream_id,
            payload: b[9..end].to_vec(),
        });
        b = &b[end..];
    }
    assert!(b.is_empty(), "trailing partial frame in output");
    v
}

/// Decodes a header block from our output with a fresh-state-tracking decoder.
fn decode(dec: &mut hpack::Decoder, block: &[u8]) -> Vec<(String, String)> {
    let mut v = Vec::new();
    dec.decode(block, &mut |n, val| {
        v.push((
            String::from_utf8_lossy(n).into_owned(),
            String::from_utf8_lossy(val).into_owned(),
        ))
    })
    .unwrap();
    v
}

/// The scripted client around one connection.
struct Client {
    conn: Connection,
    now: Duration,
    dec: hpack::Decoder,
}

impl Client {
    fn new(limits: Limits) -> Client {
        let now = Duration::from_secs(1000);
        Client {
            conn: Connection::new(limits, now),
            now,
            dec: hpack::Decoder::new(4096, 1 << 20),
        }
    }

    /// A client past the handshake (preface + empty SETTINGS), output drained.
    fn ready(limits: Limits) -> Client {
        let mut c = Client::new(limits);
        c.send(PREFACE);
        c.send(&settings(&[]));
        c.send(&frame(kind::SETTINGS, ACK, 0, &[]));
        let out = c.read();
        assert_eq!(out.first().map(|f| f.kind), Some(kind::SETTINGS));
        assert!(out
            .iter()
            .any(|f| f.kind == kind::SETTINGS && f.flags == ACK));
        c
    }

    fn send(&mut self, b: &[u8]) {
        self.conn.handle_input(b, self.now);
    }

    fn read(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        self.conn.poll_transmit(&mut out);
        parse_frames(&out)
    }

    /// Every pending event; DATA is consumed at once (its stream credit
    /// released), as an application that keeps up does.
    fn events(&mut self) -> Vec<Event> {
        let events: Vec<Event> = std::iter::from_fn(|| self.conn.poll_event()).collect();
        for e in &events {
            if let Event::Data { id, data, .. } = e {
                self.conn.release_stream_credit(*id, data.len());
            }
        }
        events
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.conn.handle_timeout(self.now);
    }

    /// Reads and expects exactly one GOAWAY with `code` and `last`, then closed.
    fn expect_goaway(&mut self, code: ErrorCode, last: u32) {
        let out = self.read();
        let g: Vec<_> = out.iter().filter(|f| f.kind == kind::GOAWAY).collect();
        assert_eq!(g.len(), 1, "expected one GOAWAY in {out:?}");
        assert_eq!(
            (g[0].code(), g[0].u32_at(0)),
            (code.to_u32(), last),
            "{out:?}"
        );
        assert!(self.conn.is_closed());
    }

    /// Reads and expects a RST_STREAM on `id` with `code`; the connection stays open.
    fn expect_rst(&mut self, id: u32, code: ErrorCode) {
        let out = self.read();
        assert!(
            out.iter()
                .any(|f| f.kind == kind::RST_STREAM && f.id == id && f.code() == code.to_u32()),
            "expected RST_STREAM({id}, {code}) in {out:?}"
        );
        assert!(!out.iter().any(|f| f.kind == kind::GOAWAY), "{out:?}");
        assert!(!self.conn.is_closed());
    }
}

fn conn_error_after_handshake(input: &[u8], code: ErrorCode) {
    let mut c = Client::ready(limits());
    c.send(input);
    c.expect_goaway(code, 0);
}

// ---- preface and SETTINGS (§3.4, §6.5) ----

#[test]
fn handshake_settings_first_then_ack() {
    let mut c = Client::new(limits());
    let out = c.read();
    // Our SETTINGS is the first frame, before any input; no ENABLE_PUSH.
    assert_eq!(out[0].kind, kind::SETTINGS);
    let ids: Vec<u16> = out[0]
        .payload
        .chunks(6)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect();
    assert_eq!(ids, [1, 3, 4, 5, 6]);
    assert_eq!(
        out[0].payload.chunks(6).nth(1).unwrap()[2..],
        4u32.to_be_bytes()
    );
    // The connection window equals the stream window: already 65,535.
    assert_eq!(out.len(), 1, "{out:?}");
    let mut larger = Client::new(Limits {
        initial_window_size: 100_000,
        ..limits()
    });
    let out = larger.read();
    assert_eq!(
        (out[1].kind, out[1].id, out[1].u32_at(0)),
        (kind::WINDOW_UPDATE, 0, 100_000 - 65_535)
    );
    c.send(PREFACE);
    c.send(&settings(&[(4, 1000)]));
    let out = c.read();
    assert_eq!(
        out,
        [Out {
            kind: kind::SETTINGS,
            flags: ACK,
            id: 0,
            payload: vec![]
        }]
    );
    // Their ACK of ours produces nothing.
    c.send(&frame(kind::SETTINGS, ACK, 0, &[]));
    assert!(c.read().is_empty());
    assert_eq!(
        c.conn.poll_timeout(),
        Some(c.now + Duration::from_secs(300))
    );
}

#[test]
fn bad_preface_is_protocol_error() {
    let mut c = Client::new(limits());
    c.read();
    c.send(b"GET / HTTP/1.1\r\n\r\n");
    c.expect_goaway(ErrorCode::ProtocolError, 0);
    // A preface split across reads is fine.
    let mut c = Client::new(limits());
    c.read();
    for b in PREFACE.chunks(5) {
        c.send(b);
    }
    c.send(&settings(&[]));
    assert!(!c.conn.is_closed());
}

#[test]
fn first_frame_must_be_settings() {
    let mut c = Client::new(limits());
    c.read();
    c.send(PREFACE);
    c.send(&frame(kind::PING, 0, 0, &[0; 8]));
    c.expect_goaway(ErrorCode::ProtocolError, 0);
    let mut c = Client::new(limits());
    c.read();
    c.send(PREFACE);
    c.send(&frame(kind::SETTINGS, ACK, 0, &[]));
    c.expect_goaway(ErrorCode::ProtocolError, 0);
}

#[test]
fn settings_validation() {
    conn_error_after_handshake(&settings(&[(2, 2)]), ErrorCode::ProtocolError);
    conn_error_after_handshake(&settings(&[(4, 1 << 31)]), ErrorCode::FlowControlError);
    conn_error_after_handshake(&settings(&[(5, 16_383)]), ErrorCode::ProtocolError);
    conn_error_after_handshake(&settings(&[(5, 1 << 24)]), ErrorCode::ProtocolError);
    conn_error_after_handshake(
        &frame(kind::SETTINGS, 0, 0, &[0; 7]),
        ErrorCode::FrameSizeError,
    );
    conn_error_after_handshake(
        &frame(kind::SETTINGS, ACK, 0, &[0; 6]),
        ErrorCode::FrameSizeError,
    );
    conn_error_after_handshake(&frame(kind::SETTINGS, 0, 1, &[]), ErrorCode::ProtocolError);
    // Unknown settings are ignored (and acked).
    let mut c = Client::ready(limits());
    c.send(&settings(&[(0x42, 7)]));
    assert_eq!(c.read()[0].flags, ACK);
}

// ---- frame-level MUSTs (§4.2, §6) ----

#[test]
fn oversize_frame_is_frame_size_error() {
    conn_error_after_handshake(&data(1, false, &[0; 16_385]), ErrorCode::FrameSizeError);
    // Detected from the header alone, before the payload arrives.
    let mut c = Client::ready(limits());
    c.send(&frame(kind::DATA, 0, 1, &[0; 20_000])[..9]);
    c.expect_goaway(ErrorCode::FrameSizeError, 0);
}

#[test]
fn wrong_fixed_lengths() {
    conn_error_after_handshake(&frame(kind::PING, 0, 0, &[0; 7]), ErrorCode::FrameSizeError);
    conn_error_after_handshake(
        &frame(kind::RST_STREAM, 0, 1, &[0; 3]),
        ErrorCode::FrameSizeError,
    );
    conn_error_after_handshake(
        &frame(kind::WINDOW_UPDATE, 0, 0, &[0; 3]),
        ErrorCode::FrameSizeError,
    );
    // PRIORITY with a bad length is only a stream error.
    let mut c = Client::ready(limits());
    c.send(&frame(kind::PRIORITY, 0, 5, &[0; 4]));
    c.expect_rst(5, ErrorCode::FrameSizeError);
    // A well-formed PRIORITY is accepted and ignored; self-dependency is a stream error.
    c.send(&frame(kind::PRIORITY, 0, 7, &[0, 0, 0, 1, 16]));
    assert!(c.read().is_empty());
    c.send(&frame(kind::PRIORITY, 0, 7, &[0, 0, 0, 7, 16]));
    c.expect_rst(7, ErrorCode::ProtocolError);
}

#[test]
fn frames_on_the_wrong_stream() {
    conn_error_after_handshake(&data(0, false, b"x"), ErrorCode::ProtocolError);
    conn_error_after_handshake(&headers(0, END_HEADERS, REQUEST), ErrorCode::ProtocolError);
    conn_error_after_handshake(
        &frame(kind::PRIORITY, 0, 0, &[0; 5]),
        ErrorCode::ProtocolError,
    );
    conn_error_after_handshake(
        &frame(kind::RST_STREAM, 0, 0, &[0; 4]),
        ErrorCode::ProtocolError,
    );
    conn_error_after_handshake(&frame(kind::SETTINGS, 0, 3, &[]), ErrorCode::ProtocolError);
    conn_error_after_handshake(&frame(kind::PING, 0, 3, &[0; 8]), ErrorCode::ProtocolError);
    conn_error_after_handshake(
        &frame(kind::GOAWAY, 0, 3, &[0; 8]),
        ErrorCode::ProtocolError,
    );
    conn_error_after_handshake(
        &frame(kind::PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2]),
        ErrorCode::ProtocolError,
    );
    conn_error_after_handshake(
        &frame(kind::CONTINUATION, END_HEADERS, 1, &[]),
        ErrorCode::ProtocolError,
    );
}

#[test]
fn padding_longer_than_payload() {
    conn_error_after_handshake(
        &frame(kind::HEADERS, END_HEADERS | 0x8, 1, &[5, 0, 0]),
        ErrorCode::ProtocolError,
    );
}

#[test]
fn window_update_zero_increment() {
    conn_error_after_handshake(&window_update(0, 0), ErrorCode::ProtocolError);
    let mut c = Client::ready(limits());
    c.send(&request(1, false));
    c.send(&window_update(1, 0));
    c.expect_rst(1, ErrorCode::ProtocolError);
    assert!(matches!(
        c.events().last(),
        Some(Event::Reset {
            id: 1,
            code: ErrorCode::ProtocolError
        })
    ));
}

#[test]
fn unknown_frame_types_are_ignored() {
    let mut c = Client::ready(limits());
    c.send(&frame(0xbe, 0xff, 0, b"whatever"));
    c.send(&frame(0xbe, 0, 3, b""));
    assert!(c.read().is_empty());
    assert!(!c.conn.is_closed());
}

// ---- header blocks (§4.3, §6.10, §8.3) ----

#[test]
fn headers_with_continuation() {
    let mut c = Client::ready(limits());
    let block = literal_block(REQUEST);
    let (a, b) = block.split_at(10);
    let (b, d) = b.split_at(20);
    c.send(&frame(kind::HEADERS, END_STREAM, 1, a));
    c.send(&frame(kind::CONTINUATION, 0, 1, b));
    assert!(c.events().is_empty());
    c.send(&frame(kind::CONTINUATION, END_HEADERS, 1, d));
    match c.events().as_slice() {
        [Event::Headers {
            id: 1,
            head,
            end_stream: true,
        }] => {
            assert_eq!(head.method(), b"POST");
            assert_eq!(head.path(), b"/echo.Echo/Reply");
            assert_eq!(head.header(b"te"), Some(&b"trailers"[..]));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn continuation_interleaving_is_protocol_error() {
    let block = literal_block(REQUEST);
    // Another frame type in the middle.
    let mut c = Client::ready(limits());
    c.send(&frame(kind::HEADERS, 0, 1, &block[..10]));
    c.send(&frame(kind::PING, 0, 0, &[0; 8]));
    c.expect_goaway(ErrorCode::ProtocolError, 0);
    // CONTINUATION for another stream.
    let mut c = Client::ready(limits());
    c.send(&frame(kind::HEADERS, 0, 1, &block[..10]));
    c.send(&frame(kind::CONTINUATION, END_HEADERS, 3, &block[10..]));
    c.expect_goaway(ErrorCode::ProtocolError, 0);
    // DATA on the same stream.
    let mut c = Client::ready(limits());
    c.send(&frame(kind::HEADERS, 0, 1, &block[..10]));
    c.send(&data(1, false, b"x"));
    c.expect_goaway(ErrorCode::ProtocolError, 0);
}

#[test]
fn continuation_flood_is_bounded() {
    let mut c = Client::ready(limits());
    c.send(&frame(kind::HEADERS, 0, 1, &[0; 100]));
    let chunk = frame(kind::CONTINUATION, 0, 1, &[0; 1000]);
    let mut sent = 0;
    while !c.conn.is_closed() && sent < 100 {
        c.send(&chunk);
        // The raw block never grows past its bound (2 x max_header_list_size).
        assert!(c.conn.block.as_ref().map_or(0, |b| b.buf.len()) <= 4096);
        sent += 1;
        if c.conn.phase == Phase::Closed {
            break;
        }
    }
    assert!(sent < 10, "flood was not stopped");
    c.expect_goaway(ErrorCode::EnhanceYourCalm, 0);
}

#[test]
fn header_list_too_large_gets_431() {
    let mut c = Client::ready(limits());
    let big = "x".repeat(120);
    let mut fields = REQUEST.to_vec();
    for _ in 0..10 {
        fields.push(("x-big", &big));
    }
    c.send(&headers(1, END_HEADERS | END_STREAM, &fields));
    let out = c.read();
    assert_eq!(
        (out[0].kind, out[0].id, out[0].flags & END_STREAM),
        (kind::HEADERS, 1, END_STREAM)
    );
    assert_eq!(
        decode(&mut c.dec, &out[0].payload),
        [(":status".into(), "431".into())]
    );
    assert!(c.events().is_empty());
    // The connection still works.
    c.send(&request(3, true));
    assert!(matches!(
        c.events().as_slice(),
        [Event::Headers { id: 3, .. }]
    ));
}

#[test]
fn malformed_request_is_stream_protocol_error() {
    let mut c = Client::ready(limits());
    c.send(&headers(
        1,
        END_HEADERS,
        &[(":method", "POST"), (":path", "/x")],
    ));
    c.expect_rst(1, ErrorCode::ProtocolError);
    c.send(&headers(
        3,
        END_HEADERS,
        &[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/"),
            ("X-Upper", "1"),
        ],
    ));
    c.expect_rst(3, ErrorCode::ProtocolError);
    c.send(&headers(
        5,
        END_HEADERS,
        &[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/"),
            ("connection", "close"),
        ],
    ));
    c.expect_rst(5, ErrorCode::ProtocolError);
    assert!(
        c.events().is_empty(),
        "malformed requests never reach the application"
    );
}

#[test]
fn hpack_error_is_compression_error() {
    // 0x40 = literal with incremental indexing, index 0 ... truncated block.
    conn_error_after_handshake(
        &frame(kind::HEADERS, END_HEADERS, 1, &[0x00, 0x05, b'a']),
        ErrorCode::CompressionError,
    );
}

#[test]
fn trailers_need_end_stream() {
    let mut c = Client::ready(limits());
    c.send(&request(1, false));
    c.send(&headers(1, END_HEADERS, &[("x-trailer", "1")]));
    c.expect_rst(1, ErrorCode::ProtocolError);
    c.send(&request(3, false));
    c.send(&data(3, false, b"abc"));
    c.send(&headers(3, END_HEADERS | END_STREAM, &[("x-trailer", "1")]));
    let ev = c.events();
    assert!(
        matches!(ev.last(), Some(Event::Trailers { id: 3 })),
        "{ev:?}"
    );
}

// ---- stream states (§5.1) ----

#[test]
fn even_and_decreasing_stream_ids() {
    conn_error_after_handshake(&request(2, true), ErrorCode::ProtocolError);
    let mut c = Client::ready(limits());
    c.send(&request(5, false));
    c.send(&request(3, false));
    c.expect_goaway(ErrorCode::ProtocolError, 5);
}

#[test]
fn frames_on_idle_streams() {
    conn_error_after_handshake(&data(1, false, b"x"), ErrorCode::ProtocolError);
    conn_error_after_handshake(&window_update(1, 5), ErrorCode::ProtocolError);
    conn_error_after_handshake(
        &frame(kind::RST_STREAM, 0, 1, &[0; 4]),
        ErrorCode::ProtocolError,
    );
}

#[test]
fn data_on_half_closed_remote_is_stream_closed() {
    let mut c = Client::ready(limits());
    c.send(&request(1, true));
    c.send(&data(1, false, b"late"));
    c.expect_rst(1, ErrorCode::StreamClosed);
    assert!(matches!(
        c.events().last(),
        Some(Event::Reset {
            id: 1,
            code: ErrorCode::StreamClosed
        })
    ));
}

#[test]
fn frames_on_closed_streams() {
    // Closed normally (both END_STREAMs): DATA or HEADERS is a connection error STREAM_CLOSED.
    let mut c = Client::ready(limits());
    c.send(&request(1, true));
    c.conn.send_headers(1, 200, &[], true).unwrap();
    assert_eq!(c.conn.open_streams(), 0);
    c.read();
    c.send(&window_update(1, 10)); // allowed late
    c.send(&frame(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 1])); // allowed
    c.send(&frame(kind::RST_STREAM, 0, 1, &[0, 0, 0, 8])); // ignored
    assert!(c.read().is_empty());
    c.send(&data(1, false, b"x"));
    c.expect_goaway(ErrorCode::StreamClosed, 1);

    let mut c = Client::ready(limits());
    c.send(&request(1, true));
    c.conn.send_headers(1, 200, &[], true).unwrap();
    c.read();
    c.send(&request(1, true));
    c.expect_goaway(ErrorCode::StreamClosed, 1);

    // Reset by us: frames in flight are ignored.
    let mut c = Client::ready(limits());
    c.send(&request(1, false));
    c.conn.reset(1, ErrorCode::Cancel);
    c.expect_rst(1, ErrorCode::Cancel);
    c.send(&data(1, true, b"in flight"));
    c.send(&headers(1, END_HEADERS | END_STREAM, &[("x", "y")]));
    assert!(c.read().is_empty());
    assert!(!c.conn.is_closed());
}

#[test]
fn too_many_streams_are_refused() {
    let mut c = Client::ready(limits());
    for id in [1, 3, 5, 7] {
        c.send(&request(id, false));
    }
    assert_eq!(c.conn.open_streams(), 4);
    c.send(&request(9, false));
    c.expect_rst(9, ErrorCode::RefusedStream);
    assert_eq!(c.events().len(), 4);
    // Its DATA in flight is ignored; a stream slot frees up for the next one.
    c.send(&data(9, true, b"x"));
    c.send(&frame(kind::RST_STREAM, 0, 1, &8u32.to_be_bytes()));
    c.send(&request(11, false));
    assert!(c.read().is_empty());
    assert!(matches!(
        c.events().as_slice(),
        [Event::Reset { id: 1, .. }, Event::Headers { id: 11, .. }]
    ));
}

#[test]
fn local_reset_limit_is_enhance_your_calm() {
    let mut c = Client::ready(limits());
    let bad = [(":method", "POST")];
    for id in [1, 3, 5] {
        c.send(&headers(id, END_HEADERS, &bad));
        c.expect_rst(id, ErrorCode::ProtocolError);
    }
    c.send(&headers(7, END_HEADERS, &bad));
    c.expect_goaway(ErrorCode::EnhanceYourCalm, 0);
}

#[test]
fn peer_reset_is_an_event_and_rapid_reset_is_bounded() {
    let mut c = Client::ready(limits());
    c.send(&request(1, false));
    c.send(&frame(kind::RST_STREAM, 0, 1, &8u32.to_be_bytes()));
    let ev = c.events();
    assert!(matches!(
        ev.as_slice(),
        [
            Event::Headers { id: 1, .. },
            Event::Reset {
                id: 1,
                code: ErrorCode::Cancel
            }
        ]
    ));
    assert_eq!(
        c.conn.send_headers(1, 200, &[], false),
        Err(SendError::UnknownStream)
    );
    // Open and reset streams in a tight loop: cut off after the bound.
    let mut id = 3;
    while !c.conn.is_closed() && id < 1000 {
        c.send(&request(id, false));
        c.send(&frame(kind::RST_STREAM, 0, id, &8u32.to_be_bytes()));
        c.events();
        if c.conn.phase == Phase::Closed {
            break;
        }
        id += 2;
    }
    assert!(id < 300, "rapid reset not bounded");
    c.expect_goaway(ErrorCode::EnhanceYourCalm, id);
}

// ---- flow control (§5.2, §6.9) ----

#[test]
fn data_beyond_the_windows() {
    // Stream window (65,535) overrun while the connection has room (extra
    // connection credit granted on another stream): stream error.
    let mut c = Client::ready(limits());
    c.send(&request(1, false));
    c.send(&request(3, false));
    c.conn.grant(3, 10_000);
    c.read();
    for _ in 0..3 {
        c.send(&data(1, false, &[0; 16_384]));
    }
    c.send(&data(1, false, &[0; 16_383]));
    assert!(c.read().is_empty());
    c.send(&data(1, false, &[0; 2]));
    c.expect_rst(1, ErrorCode::FlowControlError);
    // Connection window (65,535, the same as a stream's) overrun:
    // connection error.
    let mut c = Client::ready(limits());
    c.send(&request(1, false));
    c.send(&request(3, false));
    for _ in 0..3 {
        c.send(&data(1, false, &[0; 16_384]));
    }
    c.send(&data(1, false, &[0; 16_383]));
    c.send(&data(3, false, &[0; 2]));
    c.expect_goaway(ErrorCode::FlowControlError, 3);
}

#[test]
fn window_updates_are_sent_as_data_is_polled() {
    let mut c = Client::ready(limits());
    c.send(&request(1, false));
    for _ in 0..3 {
        c.send(&data(1, false, &[7; 11_500]));
    }
    let early = c.read();
    assert!(
        early.is_empty(),
        "nothing is credited before the application takes the data: {early:?}"
    );
    let got: usize = c
        .events()
        .iter()
        .map(|e| {
            if let Event::Data { data, .. } = e {
                data.len()
            } else {
                0
            }
        })
        .sum();
    assert_eq!(got, 34_500);
    let out = c.read();
    let inc = |id| {
        out.iter()
            .find(|f| f.kind == kind::WINDOW_UPDATE && f.id == id)
            .map(|f| f.u32_at(0))
    };
    assert_eq!(inc(1), Some(34_500)); // half of 65,535 reached on the stream
    assert_eq!(inc(0), Some(34_500)); // and on the connection (the same window)
}

#[test]
fn window_overflow() {
    conn_error_after_handshake(
        &window_update(0, MAX_WINDOW_U32),
        ErrorCode::FlowControlError,
    );
    let mut c = Client::ready(limits());
    c.send(&request(1, false));
    c.send(&window_update(1, MAX_WINDOW_U32 - 65_535));
    assert!(c.read().is_empty());
    c.send(&window_update(1, 1));
    c.expect_rst(1, ErrorCode::FlowControlError);
    // SETTINGS_INITIAL_WINDOW_SIZE that overflows an open stream's window.
    let mut c = Client::ready(limits());
    c.send(&request(1, false));
    c.send(&window_update(1, 1000));
    c.send(&settings(&[(4, MAX_WINDOW_U32)]));
    c.expect_goaway(ErrorCode::FlowControlError, 1);
}

#[test]
fn round_trip_with_flow_controlled_response() {
    let mut c = Client::ready(limits());
    // The client allows only 10 bytes per stream at first.
    c.send(&settings(&[(4, 10)]));
    assert_eq!(c.read()[0].flags, ACK);
    c.send(&request(1, false));
    c.send(&data(1, true, b"hello"));
    let ev = c.events();
    match ev.as_slice() {
        [Event::Headers {
            id: 1,
            head,
            end_stream: false,
        }, Event::Data {
            id: 1,
            data,
            end_stream: true,
        }] => {
            assert_eq!(head.header(b"content-type"), Some(&b"application/grpc"[..]));
            assert_eq!(&data[..], b"hello");
        }
        other => panic!("{other:?}"),
    }
    c.conn
        .send_headers(1, 200, &[(b"content-type", b"application/grpc")], false)
        .unwrap();
    c.conn
        .send_data(1, Bytes::from_static(b"0123456789abcdef"), false)
        .unwrap();
    c.conn.send_trailers(1, &[(b"grpc-status", b"0")]).unwrap();
    assert_eq!(
        c.conn.send_data(1, Bytes::from_static(b"x"), false),
        Err(SendError::InvalidState)
    );
    let out = c.read();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        (out[0].kind, out[0].id, out[0].flags),
        (kind::HEADERS, 1, END_HEADERS)
    );
    assert_eq!(
        decode(&mut c.dec, &out[0].payload),
        [
            (":status".into(), "200".into()),
            ("content-type".into(), "application/grpc".into())
        ]
    );
    assert_eq!(
        (out[1].kind, out[1].flags, &out[1].payload[..]),
        (kind::DATA, 0, &b"0123456789"[..])
    );
    assert!(c.read().is_empty(), "blocked on the stream window");
    c.send(&window_update(1, 3));
    let out = c.read();
    assert_eq!(
        (out[0].kind, &out[0].payload[..]),
        (kind::DATA, &b"abc"[..])
    );
    c.send(&window_update(1, 100));
    let out = c.read();
    assert_eq!(
        (out[0].kind, out[0].flags, &out[0].payload[..]),
        (kind::DATA, 0, &b"def"[..])
    );
    assert_eq!(
        (out[1].kind, out[1].flags),
        (kind::HEADERS, END_HEADERS | END_STREAM)
    );
    assert_eq!(
        decode(&mut c.dec, &out[1].payload),
        [("grpc-status".into(), "0".into())]
    );
    assert_eq!(c.conn.open_streams(), 0);
    assert_eq!(
        c.conn.send_data(1, Bytes::new(), true),
        Err(SendError::UnknownStream)
    );
}

#[test]
fn response_respects_connection_window_and_frame_size() {
    let mut c = Client::ready(limits());
    c.send(&settings(&[(4, MAX_WINDOW_U32 / 2)]));
    c.read();
    c.send(&request(1, true));
    c.send(&request(3, true));
    c.events();
    for id in [1, 3] {
        c.conn.send_headers(id, 200, &[], false).unwrap();
        c.conn
            .send_data(id, Bytes::from(vec![1u8; 40_000]), true)
            .unwrap();
    }
    let out = c.read();
    let data: Vec<_> = out.iter().filter(|f| f.kind == kind::DATA).collect();
    // Peer MAX_FRAME_SIZE 16,384 per frame, connection window 65,535 in total, round-robin.
    assert!(data.iter().all(|f| f.payload.len() <= 16_384));
    assert_eq!(data.iter().map(|f| f.payload.len()).sum::<usize>(), 65_535);
    assert_eq!(
        data.iter().map(|f| f.id).collect::<Vec<_>>()[..4],
        [1, 3, 1, 3]
    );
    c.send(&window_update(0, 100_000));
    let out = c.read();
    let ends: Vec<_> = out
        .iter()
        .filter(|f| f.kind == kind::DATA && f.flags & END_STREAM != 0)
        .map(|f| f.id)
        .collect();
    // Round-robin continues where it stopped: stream 3 is served first this time.
    assert_eq!(ends, [3, 1]);
    assert_eq!(c.conn.open_streams(), 0);
}

#[test]
fn early_response_resets_with_no_error() {
    let mut c = Client::ready(limits());
    c.send(&request(1, false));
    c.events();
    c.conn
        .send_headers(1, 200, &[(b"grpc-status", b"12")], true)
        .unwrap();
    let out = c.read();
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].kind, out[0].flags),
        (kind::HEADERS, END_HEADERS | END_STREAM)
    );
    assert_eq!((out[1].kind, out[1].code()), (kind::RST_STREAM, 0));
    assert!(matches!(
        c.events().as_slice(),
        [Event::Reset {
            id: 1,
            code: ErrorCode::NoError
        }]
    ));
    // The rest of the request body is ignored.
    c.send(&data(1, true, b"rest"));
    assert!(c.read().is_empty());
}

// ---- PING, GOAWAY, shutdown (§6.7, §6.8) ----

#[test]
fn ping_is_acked_and_acks_are_ignored() {
    let mut c = Client::ready(limits());
    c.send(&frame(kind::PING, 0, 0, b"12345678"));
    assert_eq!(
        c.read(),
        [Out {
            kind: kind::PING,
            flags: ACK,
            id: 0,
            payload: b"12345678".to_vec()
        }]
    );
    c.send(&frame(kind::PING, ACK, 0, b"12345678"));
    assert!(c.read().is_empty());
}

#[test]
fn graceful_shutdown() {
    let mut c = Client::ready(limits());
    c.send(&request(1, true));
    c.send(&request(3, true));
    c.events();
    c.conn.shutdown();
    // First step: GOAWAY(2^31-1) and a PING (§6.8).
    let out = c.read();
    assert_eq!(
        (out[0].kind, out[0].u32_at(0), out[0].code()),
        (kind::GOAWAY, MAX_WINDOW_U32, 0)
    );
    assert_eq!(
        (out[1].kind, &out[1].payload[..]),
        (kind::PING, &b"lean-bye"[..])
    );
    // A stream the client sent before it saw the GOAWAY is still served.
    c.send(&request(5, true));
    assert!(matches!(
        c.events().as_slice(),
        [Event::Headers { id: 5, .. }]
    ));
    c.conn.send_headers(5, 200, &[], true).unwrap();
    c.read();
    // The PING's ACK brings the final GOAWAY with the last stream processed.
    c.send(&frame(kind::PING, ACK, 0, b"lean-bye"));
    let out = c.read();
    assert_eq!(
        (out[0].kind, out[0].u32_at(0), out[0].code()),
        (kind::GOAWAY, 5, 0)
    );
    // Later streams are refused; open ones finish.
    c.send(&request(7, true));
    c.expect_rst(7, ErrorCode::RefusedStream);
    assert!(c.events().is_empty());
    c.conn.send_headers(1, 200, &[], true).unwrap();
    c.read();
    assert!(!c.conn.is_closed());
    c.conn.send_headers(3, 200, &[], false).unwrap();
    c.conn
        .send_data(3, Bytes::from_static(b"bye"), true)
        .unwrap();
    assert!(!c.conn.is_closed());
    let out = c.read();
    assert_eq!(
        out.last().map(|f| (f.kind, f.flags)),
        Some((kind::DATA, END_STREAM))
    );
    assert!(c.conn.is_closed());
}

#[test]
fn peer_goaway_finishes_open_streams_then_closes() {
    let mut c = Client::ready(limits());
    c.send(&request(1, true));
    c.events();
    c.send(&frame(kind::GOAWAY, 0, 0, &[0; 8]));
    assert!(!c.conn.is_closed());
    c.conn.send_headers(1, 200, &[], true).unwrap();
    c.read();
    assert!(c.conn.is_closed());
}

#[test]
fn read_closed() {
    let mut c = Client::ready(limits());
    c.send(&request(1, true));
    c.send(&request(3, false));
    c.events();
    c.conn.handle_read_closed();
    assert!(matches!(
        c.events().as_slice(),
        [Event::Reset {
            id: 3,
            code: ErrorCode::Cancel
        }]
    ));
    assert!(!c.conn.wants_input());
    c.conn.send_headers(1, 200, &[], true).unwrap();
    c.read();
    assert!(c.conn.is_closed());
}

/// hostile `vanished_client_with_a_blocked_reply_is_closed`: a client that
/// sends a whole request with a zero window and then EOF can never take the
/// reply; the stream is reset and the connection closes.
#[test]
fn read_closed_with_a_reply_blocked_on_flow_control() {
    const INITIAL_WINDOW_SIZE: u16 = 4;
    let mut c = Client::ready(limits());
    c.send(&settings(&[(INITIAL_WINDOW_SIZE, 0)]));
    c.send(&request(1, true));
    c.send(&request(3, true));
    c.events();
    c.read();
    for id in [1, 3] {
        c.conn.send_headers(id, 200, &[], false).unwrap();
        c.conn
            .send_data(id, Bytes::from_static(b"blocked"), false)
            .unwrap();
    }
    c.conn.send_trailers(1, &[(b"grpc-status", b"0")]).unwrap();
    // Before EOF the replies simply wait for WINDOW_UPDATE.
    assert!(c.read().iter().all(|f| f.kind == kind::HEADERS));
    assert!(!c.conn.is_closed());
    c.conn.handle_read_closed();
    let out = c.read();
    let rst: Vec<u32> = out
        .iter()
        .filter(|f| f.kind == kind::RST_STREAM && f.code() == ErrorCode::Cancel.to_u32())
        .map(|f| f.id)
        .collect();
    assert_eq!(rst, [1, 3], "{out:?}");
    assert!(matches!(
        c.events().as_slice(),
        [Event::Reset { id: 1, .. }, Event::Reset { id: 3, .. }]
    ));
    assert!(c.conn.is_closed());
}

#[test]
fn closed_streams_are_remembered_in_a_bounded_ring() {
    // 40 streams opened and finished: the last MIN_CLOSED_MEMORY (32) are
    // known as closed, older ones are forgotten.
    let finish_40 = || {
        let mut c = Client::ready(limits());
        for n in 0..40u32 {
            let id = 2 * n + 1;
            c.send(&request(id, true));
            c.events();
            c.conn.send_headers(id, 200, &[], true).unwrap();
            c.read();
        }
        assert!(c.conn.closed.len() <= MIN_CLOSED_MEMORY);
        c
    };
    // Recent (stream 79): DATA after END_STREAM is a connection error.
    let mut c = finish_40();
    c.send(&data(79, false, b"x"));
    c.expect_goaway(ErrorCode::StreamClosed, 79);
    // The oldest remembered one (stream 17, the 9th) likewise.
    let mut c = finish_40();
    c.send(&data(17, false, b"x"));
    c.expect_goaway(ErrorCode::StreamClosed, 79);
    // Forgotten (stream 15, the 8th): only a stream error.
    let mut c = finish_40();
    c.send(&data(15, false, b"x"));
    c.expect_rst(15, ErrorCode::StreamClosed);
}

#[test]
fn closed_memory_covers_a_full_window_of_streams() {
    // 200 concurrent streams, all reset by the application (say, deadlines):
    // the client's DATA in flight for every one of them is ignored, not an error.
    let limits = Limits {
        max_concurrent_streams: 200,
        ..limits()
    };
    let mut c = Client::ready(limits);
    let ids: Vec<u32> = (0..200).map(|n| 2 * n + 1).collect();
    for &id in &ids {
        c.send(&request(id, false));
    }
    assert_eq!(c.events().len(), 200);
    for &id in &ids {
        c.conn.reset(id, ErrorCode::Cancel);
    }
    c.read();
    for &id in &ids {
        c.send(&data(id, true, b"late"));
    }
    let out = c.read();
    assert!(out.is_empty(), "late DATA answered: {out:?}");
    assert!(!c.conn.is_closed());
    assert!(c.conn.closed.len() >= 200);
}

/// One round of honest, busy traffic: a full window of calls, of which the
/// application resets some (its deadline passed) while the client's DATA is
/// in flight, the client cancels some, and the rest complete.
fn busy_round(c: &mut Client, first_id: u32, concurrency: u32, over_the_limit: bool) -> u32 {
    let ids: Vec<u32> = (0..concurrency).map(|n| first_id + 2 * n).collect();
    for &id in &ids {
        c.send(&request(id, false));
    }
    let mut next = first_id + 2 * concurrency;
    if over_the_limit {
        // A client that did not wait for a free slot: refused, may retry.
        c.send(&request(next, true));
        c.expect_rst(next, ErrorCode::RefusedStream);
        next += 2;
    }
    assert_eq!(c.events().len(), ids.len());
    for (n, &id) in ids.iter().enumerate() {
        if n % 10 == 0 {
            c.conn.reset(id, ErrorCode::Cancel);
        }
    }
    for (n, &id) in ids.iter().enumerate() {
        if n % 10 == 5 {
            c.send(&frame(kind::RST_STREAM, 0, id, &8u32.to_be_bytes()));
        } else {
            c.send(&data(id, true, b"request"));
        }
    }
    for ev in c.events() {
        if let Event::Data {
            id,
            end_stream: true,
            ..
        } = ev
        {
            c.conn.send_headers(id, 200, &[], false).unwrap();
            c.conn
                .send_data(id, Bytes::from_static(b"reply"), false)
                .unwrap();
            c.conn.send_trailers(id, &[(b"grpc-status", b"0")]).unwrap();
        }
    }
    let out = c.read();
    assert!(
        !out.iter().any(|f| f.kind == kind::GOAWAY),
        "cut off at stream {first_id}: {:?}",
        out.iter().find(|f| f.kind == kind::GOAWAY)
    );
    // The client hands back the connection credit the replies used.
    let replied: usize = out
        .iter()
        .filter(|f| f.kind == kind::DATA)
        .map(|f| f.payload.len())
        .sum();
    if replied > 0 {
        c.send(&window_update(0, replied as u32));
    }
    next
}

#[test]
fn a_long_busy_connection_is_never_cut_off() {
    // 40,000 calls in 100 simulated seconds, 10 % cancelled by the client and
    // 10 % reset by the application with the client's DATA still in flight,
    // now and then one stream over the limit: far past every lifetime count
    // the old limits had (100 peer resets per 10 s, 3 local resets).
    let limits = Limits {
        max_concurrent_streams: 100,
        ..limits()
    };
    let mut c = Client::ready(limits);
    let mut id = 1;
    for round in 0..400 {
        id = busy_round(&mut c, id, 100, round % 10 == 0);
        c.advance(Duration::from_millis(250));
    }
    assert!(!c.conn.is_closed());
    assert_eq!(c.conn.open_streams(), 0);
}

#[test]
fn cancel_only_traffic_is_still_cut_off() {
    // The same client minus the calls that complete is a rapid reset: every
    // stream cancelled, nothing earned back.
    let mut c = Client::ready(Limits {
        max_concurrent_streams: 100,
        ..limits()
    });
    let mut id = 1;
    let mut tripped = false;
    for _ in 0..10 {
        for _ in 0..100 {
            c.send(&request(id, false));
            c.send(&frame(kind::RST_STREAM, 0, id, &8u32.to_be_bytes()));
            id += 2;
        }
        c.events();
        if c.read().iter().any(|f| f.kind == kind::GOAWAY) {
            tripped = true;
            break;
        }
        c.advance(Duration::from_millis(100));
    }
    assert!(tripped, "1,000 cancels in one second were not bounded");
    // Refusals alone, far past the free bound, count as client errors.
    let mut c = Client::ready(limits());
    for id in [1, 3, 5, 7] {
        c.send(&request(id, false));
    }
    let mut id = 9;
    while c.conn.phase != Phase::Closed && id < 2000 {
        c.send(&request(id, true));
        id += 2;
    }
    assert_eq!(c.conn.phase, Phase::Closed, "refusal flood not bounded");
    assert!(id > 9 + 2 * 256, "cut off before the free refusals: {id}");
}

#[test]
fn local_resets_are_a_rate() {
    let mut c = Client::ready(limits()); // max_local_resets 3 per 10 s
    let bad = [(":method", "POST")];
    // Three errors every 10 s, for a long time: never over the rate.
    let mut id = 1;
    for _ in 0..20 {
        for _ in 0..3 {
            c.send(&headers(id, END_HEADERS, &bad));
            c.expect_rst(id, ErrorCode::ProtocolError);
            id += 2;
        }
        c.advance(Duration::from_secs(10));
    }
    // A burst over it still goes.
    for _ in 0..4 {
        c.send(&headers(id, END_HEADERS, &bad));
        id += 2;
    }
    let out = c.read();
    assert!(out.iter().any(|f| f.kind == kind::GOAWAY), "{out:?}");
}

// ---- timers ----

#[test]
fn handshake_timeout() {
    // Nothing at all: close without a word.
    let mut c = Client::new(limits());
    c.read();
    assert_eq!(c.conn.poll_timeout(), Some(c.now + Duration::from_secs(10)));
    c.advance(Duration::from_secs(9));
    assert!(!c.conn.is_closed());
    c.advance(Duration::from_secs(1));
    assert!(c.read().is_empty());
    assert!(c.conn.is_closed());
    assert_eq!(c.conn.poll_timeout(), None);
    // Preface but no SETTINGS: GOAWAY.
    let mut c = Client::new(limits());
    c.read();
    c.send(PREFACE);
    c.advance(Duration::from_secs(10));
    c.expect_goaway(ErrorCode::SettingsTimeout, 0);
}

#[test]
fn idle_timeout() {
    let mut c = Client::ready(limits());
    c.send(&request(1, true));
    c.events();
    assert_eq!(
        c.conn.poll_timeout(),
        None,
        "no idle timer while a stream is open"
    );
    c.advance(Duration::from_secs(100));
    c.conn.send_headers(1, 200, &[], true).unwrap();
    c.read();
    let deadline = c.conn.poll_timeout().unwrap();
    assert_eq!(deadline, c.now + Duration::from_secs(300));
    c.advance(Duration::from_secs(299));
    assert!(c.read().is_empty());
    c.advance(Duration::from_secs(1));
    c.expect_goaway(ErrorCode::NoError, 1);
}

#[test]
fn keepalive_ping_and_timeout() {
    let mut l = limits();
    l.idle_timeout = None;
    l.keepalive_interval = Some(Duration::from_secs(60));
    let mut c = Client::ready(l);
    assert_eq!(c.conn.poll_timeout(), Some(c.now + Duration::from_secs(60)));
    c.advance(Duration::from_secs(60));
    let out = c.read();
    assert_eq!((out[0].kind, out[0].flags), (kind::PING, 0));
    assert_eq!(c.conn.poll_timeout(), Some(c.now + Duration::from_secs(20)));
    // Acked: the next ping comes an interval after the ack.
    c.send(&frame(kind::PING, ACK, 0, &out[0].payload));
    assert_eq!(c.conn.poll_timeout(), Some(c.now + Duration::from_secs(60)));
    c.advance(Duration::from_secs(60));
    assert_eq!(c.read()[0].kind, kind::PING);
    // Not acked: closed.
    c.advance(Duration::from_secs(20));
    c.expect_goaway(ErrorCode::NoError, 0);
}

// ---- resource bounds ----

#[test]
fn output_backpressure() {
    let mut c = Client::ready(limits());
    let ping = frame(kind::PING, 0, 0, b"flooding");
    let mut n = 0;
    while c.conn.wants_input() {
        c.send(&ping);
        n += 1;
        assert!(n < 10_000);
    }
    assert!(c.conn.out.len() >= OUTPUT_HIGH_WATER && c.conn.out.len() < OUTPUT_HIGH_WATER + 64);
    // Writing the output re-enables reading.
    assert_eq!(c.read().len(), n);
    assert!(c.conn.wants_input());
    // A driver that ignores wants_input is cut off at the hard limit.
    let mut c = Client::ready(limits());
    let many: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 70_000)
        .collect();
    c.send(&many);
    assert!(c.conn.out.len() <= OUTPUT_HARD_LIMIT + 1024);
    let out = c.read();
    assert_eq!(
        out.last().map(|f| (f.kind, f.code())),
        Some((kind::GOAWAY, ErrorCode::EnhanceYourCalm.to_u32()))
    );
}

#[test]
fn queued_response_data_counts_as_unsent_output() {
    const INITIAL_WINDOW_SIZE: u16 = 4;
    let mut c = Client::ready(limits());
    c.send(&settings(&[(INITIAL_WINDOW_SIZE, 1 << 20)]));
    c.send(&window_update(0, 1 << 20));
    c.send(&request(1, true));
    c.events();
    c.read();
    assert!(c.conn.wants_input());
    c.conn.send_headers(1, 200, &[], false).unwrap();
    c.conn
        .send_data(1, Bytes::from(vec![7u8; 200 * 1024]), true)
        .unwrap();
    // 200 KiB ready to go and nobody taking it: stop reading.
    assert!(!c.conn.wants_input());
    let mut taken = 0;
    while !c.conn.wants_input() {
        let out = c.read();
        assert!(!out.is_empty());
        taken += out
            .iter()
            .filter(|f| f.kind == kind::DATA)
            .map(|f| f.payload.len())
            .sum::<usize>();
    }
    // Reading resumes once less than the high-water mark is left.
    assert!(200 * 1024 - taken < OUTPUT_HIGH_WATER, "{taken}");
    assert!(taken < 200 * 1024);

    // DATA held back by the peer's flow control does not stop reading: the
    // peer's WINDOW_UPDATEs must get through.
    let mut c = Client::ready(limits());
    c.send(&settings(&[(INITIAL_WINDOW_SIZE, 1 << 20)]));
    c.send(&request(1, true));
    c.events();
    c.conn.send_headers(1, 200, &[], false).unwrap();
    c.conn
        .send_data(1, Bytes::from(vec![7u8; 200 * 1024]), true)
        .unwrap();
    let out = c.read();
    let sent: usize = out
        .iter()
        .filter(|f| f.kind == kind::DATA)
        .map(|f| f.payload.len())
        .sum();
    assert_eq!(sent, 65_535, "the connection window is the default");
    assert!(c.conn.wants_input(), "135 KiB queued, none of it sendable");
    c.send(&window_update(0, 1 << 20));
    assert!(!c.conn.wants_input(), "now it is sendable");
}

#[test]
fn partial_frames_and_lazy_buffers() {
    let mut c = Client::ready(limits());
    assert_eq!(c.conn.inbuf.capacity(), 0);
    assert_eq!(
        c.conn.out.capacity(),
        0,
        "output buffer handed to the caller"
    );
    let mut input = request(1, false);
    input.extend(data(1, true, b"split me"));
    for b in input.chunks(1) {
        c.send(b);
    }
    let ev = c.events();
    assert!(matches!(
        ev.as_slice(),
        [
            Event::Headers { id: 1, .. },
            Event::Data {
                id: 1,
                end_stream: true,
                ..
            }
        ]
    ));
    assert_eq!(
        c.conn.inbuf.capacity(),
        0,
        "input buffer freed after the frame"
    );
    let size = std::mem::size_of::<Connection>();
    eprintln!("size_of::<Connection>() = {size}");
    // (Three reset rates of 32 bytes each are part of it.)
    assert!(size < 760, "{size}");
    // A driver's reused write buffer is filled, not swapped away.
    c.send(&frame(kind::PING, 0, 0, b"12345678"));
    let mut reused = Vec::with_capacity(64 * 1024);
    c.conn.poll_transmit(&mut reused);
    assert_eq!((reused.len(), reused.capacity()), (17, 64 * 1024));
    assert!(c.conn.out.capacity() <= 1024);
}

/// A small deterministic generator; the fuzzer does the real work.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One random frame: mostly well-formed traffic on recent streams (so the
/// stream paths are reached), sometimes a broken or arbitrary frame.
fn random_frame(r: &mut Rng, next_id: &mut u32) -> Vec<u8> {
    let recent = next_id.saturating_sub(2 * r.below(3) as u32).max(1);
    let flags = r.next() as u8;
    match r.below(20) {
        0..=4 => {
            *next_id += 2;
            request(*next_id, r.below(3) == 0)
        }
        5..=9 => data(recent, r.below(4) == 0, &vec![b'x'; r.below(3000) as usize]),
        10 => window_update(recent * r.below(2) as u32, 1 + r.below(100_000) as u32),
        11 => frame(
            kind::RST_STREAM,
            0,
            recent,
            &(r.below(14) as u32).to_be_bytes(),
        ),
        12 => settings(&[(1 + r.below(6) as u16, r.below(70_000) as u32)]),
        13 => frame(kind::PING, flags & 1, 0, &r.next().to_be_bytes()),
        14 => frame(kind::PRIORITY, 0, recent, &[0, 0, 0, r.below(12) as u8, 1]),
        15 => {
            *next_id += 2;
            let block = literal_block(REQUEST);
            let cut = r.below(block.len() as u64) as usize;
            let mut v = frame(
                kind::HEADERS,
                flags & !END_HEADERS & !0x28,
                *next_id,
                &block[..cut],
            );
            v.extend(frame(
                kind::CONTINUATION,
                END_HEADERS,
                *next_id,
                &block[cut..],
            ));
            v
        }
        16 => headers(recent, END_HEADERS | END_STREAM, &[("grpc-status", "0")]),
        _ => {
            let len = r.below(40) as usize;
            let payload: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
            frame(r.below(12) as u8, flags, r.below(12) as u32, &payload)
        }
    }
}

#[test]
fn arbitrary_input_never_panics() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let rounds = std::env::var("H2_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let (mut opened, mut answered) = (0, 0);
    for _ in 0..rounds {
        let mut c = Client::ready(limits());
        let mut buf = Vec::new();
        let mut next_id = 1;
        for _ in 0..30 {
            buf.extend(random_frame(&mut r, &mut next_id));
        }
        // Sometimes flip a few bytes anywhere (lengths, flags, ids, HPACK).
        for _ in 0..r.below(4) {
            let i = r.below(buf.len() as u64) as usize;
            buf[i] ^= r.next() as u8;
        }
        let chunk = 1 + r.below(100) as usize;
        for piece in buf.chunks(chunk) {
            c.send(piece);
            // The application answers whatever it sees, in random ways.
            for ev in c.events() {
                if matches!(ev, Event::Headers { .. }) {
                    opened += 1;
                }
                let id = match ev {
                    Event::Headers { id, .. } | Event::Data { id, .. } | Event::Trailers { id } => {
                        id
                    }
                    Event::Reset { .. } => continue,
                };
                let sent = match r.below(5) {
                    0 => c.conn.send_headers(id, 200, &[], r.below(2) == 0),
                    1 => c.conn.send_data(
                        id,
                        Bytes::from(vec![1; r.below(70_000) as usize]),
                        r.below(2) == 0,
                    ),
                    2 => c.conn.send_trailers(id, &[(b"grpc-status", b"0")]),
                    3 => {
                        c.conn.reset(id, ErrorCode::Cancel);
                        Ok(())
                    }
                    _ => Err(SendError::InvalidState),
                };
                answered += usize::from(sent.is_ok());
            }
            if r.below(50) == 0 {
                c.conn.shutdown();
            }
            if r.below(3) > 0 {
                let _ = c.read();
            }
            // The bounds hold whatever the input.
            assert!(c.conn.inbuf.len() <= HEAD_LEN + 16_384);
            assert!(c.conn.block.as_ref().map_or(0, |b| b.buf.len()) <= 4096);
            assert!(c.conn.out.len() <= OUTPUT_HARD_LIMIT + 64 * 1024);
        }
        c.advance(Duration::from_secs(r.below(1000)));
        let _ = c.read();
        c.conn.handle_read_closed();
        let _ = c.read();
    }
    // The generator must reach the stream paths, not just die at the first frame.
    assert!(
        opened > rounds / 2 && answered > rounds / 4,
        "opened {opened}, answered {answered}"
    );
}

#[test]
fn settings_ack_timeout() {
    let mut c = Client::new(limits());
    c.read();
    c.send(PREFACE);
    c.send(&settings(&[]));
    c.read();
    // Handshake done, but our SETTINGS were never acknowledged.
    assert_eq!(c.conn.poll_timeout(), Some(c.now + Duration::from_secs(10)));
    c.advance(Duration::from_secs(10));
    c.expect_goaway(ErrorCode::SettingsTimeout, 0);
}

#[test]
fn self_dependent_headers_keep_hpack_in_sync() {
    let mut c = Client::ready(limits());
    let mut p = vec![0, 0, 0, 1, 16]; // priority fields: depends on stream 1 (itself)
    p.extend(literal_block(REQUEST));
    c.send(&frame(kind::HEADERS, END_HEADERS | 0x20, 1, &p));
    c.expect_rst(1, ErrorCode::ProtocolError);
    c.send(&request(3, true));
    assert!(matches!(
        c.events().as_slice(),
        [Event::Headers { id: 3, .. }]
    ));
}

#[test]
fn initial_window_size_changes_adjust_open_streams() {
    let mut c = Client::ready(limits());
    c.send(&settings(&[(4, 10)]));
    c.send(&request(1, true));
    c.events();
    c.read();
    c.conn.send_headers(1, 200, &[], false).unwrap();
    c.conn
        .send_data(1, Bytes::from(vec![9u8; 30]), true)
        .unwrap();
    let sizes = |out: &[Out]| {
        out.iter()
            .filter(|f| f.kind == kind::DATA)
            .map(|f| f.payload.len())
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes(&c.read()), [10]);
    // §6.9.2: a decrease can make the window negative (10 - 10 + 5 - 10 = -5)...
    c.send(&settings(&[(4, 5)]));
    c.send(&window_update(1, 10));
    assert_eq!(sizes(&c.read()), [5]);
    // ...and an increase applies to the open stream too (+95).
    c.send(&settings(&[(4, 100)]));
    let out = c.read();
    assert_eq!(sizes(&out), [15]);
    assert_eq!(out.last().map(|f| f.flags & END_STREAM), Some(END_STREAM));
}

#[test]
fn send_api_state_errors() {
    let mut c = Client::ready(limits());
    c.send(&request(1, true));
    c.events();
    assert_eq!(
        c.conn.send_data(1, Bytes::from_static(b"x"), false),
        Err(SendError::InvalidState)
    );
    assert_eq!(c.conn.send_trailers(1, &[]), Err(SendError::InvalidState));
    assert_eq!(
        c.conn.send_headers(3, 200, &[], false),
        Err(SendError::UnknownStream)
    );
    c.conn.send_headers(1, 200, &[], false).unwrap();
    assert_eq!(
        c.conn.send_headers(1, 200, &[], false),
        Err(SendError::InvalidState)
    );
    c.send(&frame(kind::PING, 0, 0, &[0; 7]));
    assert!(matches!(
        c.events().as_slice(),
        [Event::Reset {
            id: 1,
            code: ErrorCode::FrameSizeError
        }]
    ));
    assert_eq!(
        c.conn.send_data(1, Bytes::new(), true),
        Err(SendError::ConnectionClosed)
    );
}

#[test]
fn limits_from_config() {
    let config = crate::config::Config::default();
    let l = config.h2_limits();
    assert_eq!(l.max_concurrent_streams, config.max_concurrent_streams);
    assert_eq!(l.max_header_list_size, config.max_header_list_size);
    assert_eq!(l.max_local_resets, config.max_local_resets);
    assert_eq!(l.idle_timeout, config.idle_timeout);
    assert_eq!(l.keepalive_interval, config.keepalive_interval);
    assert_eq!(l.max_frame_size, 16_384);
    assert_eq!(Limits::default(), l);
    // What we advertise follows the limits.
    let mut c = Client::new(l);
    let out = c.read();
    let params: Vec<(u16, u32)> = out[0]
        .payload
        .chunks(6)
        .map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
            )
        })
        .collect();
    assert_eq!(
        params,
        [
            (1, 4096),
            (3, 100),
            (4, 64 * 1024), // the memory budget's window (32 MiB, 256 connections)
            (5, 16_384),
            (6, 16 * 1024)
        ]
    );
}
