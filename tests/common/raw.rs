//! A deliberately small hand-built HTTP/2 client (RFC 9113) for protocol
//! cases a well-behaved gRPC library never sends. It writes frames as given
//! and reads frames back; header blocks are HPACK-coded with the independent
//! `hpack` crate, so neither server flavour's own HTTP/2 code is trusted here.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame type numbers (RFC 9113 §6).
pub mod ty {
    /// DATA
    pub const DATA: u8 = 0;
    /// HEADERS
    pub const HEADERS: u8 = 1;
    /// RST_STREAM
    pub const RST_STREAM: u8 = 3;
    /// SETTINGS
    pub const SETTINGS: u8 = 4;
    /// PING
    pub const PING: u8 = 6;
    /// GOAWAY
    pub const GOAWAY: u8 = 7;
    /// WINDOW_UPDATE
    pub const WINDOW_UPDATE: u8 = 8;
    /// CONTINUATION
    pub const CONTINUATION: u8 = 9;
}

/// Frame flags.
pub mod flag {
    /// END_STREAM (DATA, HEADERS); ACK (SETTINGS, PING).
    pub const END_STREAM: u8 = 0x1;
    /// ACK (SETTINGS, PING).
    pub const ACK: u8 = 0x1;
    /// END_HEADERS (HEADERS, CONTINUATION).
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED (DATA, HEADERS).
    pub const PADDED: u8 = 0x8;
    /// PRIORITY (HEADERS).
    pub const PRIORITY: u8 = 0x20;
}

/// One frame as read off the wire.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Frame type.
    pub ty: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier (reserved bit cleared).
    pub stream: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

/// What the server did with one stream, collected by [`Conn::response`].
#[derive(Debug, Default)]
pub struct Response {
    /// The first header block (`:status` and the rest), in order.
    pub headers: Vec<(String, String)>,
    /// Concatenated DATA payloads.
    pub data: Vec<u8>,
    /// The trailing header block, if any.
    pub trailers: Vec<(String, String)>,
    /// Whether the server ended the stream (END_STREAM seen).
    pub ended: bool,
    /// RST_STREAM error code, if the server reset the stream.
    pub reset: Option<u32>,
    /// GOAWAY error code, if the server sent one meanwhile.
    pub goaway: Option<u32>,
    /// Whether the connection was closed before the stream ended.
    pub closed: bool,
}

impl Response {
    /// The value of `name` in the headers or, failing that, the trailers.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .chain(self.trailers.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `:status` as a number.
    pub fn status(&self) -> Option<u16> {
        self.headers
            .iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse().ok())
    }

    /// `grpc-status` as a number (headers for Trailers-Only, else trailers).
    pub fn grpc_status(&self) -> Option<u32> {
        self.get("grpc-status").and_then(|v| v.parse().ok())
    }
}

/// A raw HTTP/2 connection to a test server.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    encoder: hpack::Encoder<'static>,
    decoder: hpack::Decoder<'static>,
    /// Every frame read so far, for assertions on the whole exchange.
    pub seen: Vec<Frame>,
}

impl Conn {
    /// Opens a TCP connection (nothing is sent yet).
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("tcp connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
            encoder: hpack::Encoder::new(),
            decoder: hpack::Decoder::new(),
            seen: Vec::new(),
        }
    }

    /// Opens a connection and sends the preface and an empty SETTINGS frame.
    pub fn handshake(addr: SocketAddr) -> Conn {
        let mut conn = Conn::connect(addr);
        conn.write(PREFACE);
        conn.frame(ty::SETTINGS, 0, 0, &[]);
        conn
    }

    /// Writes raw bytes. Failures (the server closed on us) are ignored:
    /// the read side reports what happened.
    pub fn write(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Writes one frame.
    pub fn frame(&mut self, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
        let len = u32::try_from(payload.len()).expect("frame length");
        let mut out = Vec::with_capacity(9 + payload.len());
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.push(ty);
        out.push(flags);
        out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        out.extend_from_slice(payload);
        self.write(&out);
    }

    /// Writes a HEADERS frame (END_HEADERS set) with `fields` HPACK-encoded.
    pub fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) {
        let block = self
            .encoder
            .encode(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
        let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
        self.frame(ty::HEADERS, flags, stream, &block);
    }

    /// Writes a DATA frame.
    pub fn data(&mut self, stream: u32, data: &[u8], end_stream: bool) {
        self.frame(
            ty::DATA,
            if end_stream { flag::END_STREAM } else { 0 },
            stream,
            data,
        );
    }

    /// Reads the next frame, answering SETTINGS and PING on the way (they
    /// are still returned). `None` on EOF, reset, or after `timeout`.
    pub fn read_frame(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let frame = Frame {
                        ty: self.buf[3],
                        flags: self.buf[4],
                        stream: u32::from_be_bytes([
                            self.buf[5],
                            self.buf[6],
                            self.buf[7],
                            self.buf[8],
                        ]) & 0x7fff_ffff,
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    if frame.ty == ty::SETTINGS && frame.flags & flag::ACK == 0 {
                        self.frame(ty::SETTINGS, flag::ACK, 0, &[]);
                    }
                    if frame.ty == ty::PING && frame.flags & flag::ACK == 0 {
                        let payload = frame.payload.clone();
                        self.frame(ty::PING, flag::ACK, 0, &payload);
                    }
                    self.seen.push(frame.clone());
                    return Some(frame);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// Reads until the server closes the connection or `timeout` passes;
    /// returns whether it closed.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false
                }
                Err(_) => return true,
            }
        }
    }

    /// Bytes received but not yet parsed into frames.
    pub fn unparsed(&self) -> &[u8] {
        &self.buf
    }

    /// Collects what the server sends on `stream` until it ends, is reset,
    /// the connection closes, or `timeout` passes. Frames for other streams
    /// are kept in [`Conn::seen`]; every header block is decoded in order so
    /// the HPACK table stays in step.
    pub fn response(&mut self, stream: u32, timeout: Duration) -> Response {
        let deadline = Instant::now() + timeout;
        let mut resp = Response::default();
        let mut block: Vec<u8> = Vec::new();
        let mut block_stream = 0;
        let mut block_end_stream = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(frame) = self.read_frame(left) else {
                resp.closed = Instant::now() < deadline;
                return resp;
            };
            match frame.ty {
                ty::HEADERS | ty::CONTINUATION => {
                    let mut payload: &[u8] = &frame.payload;
                    if frame.ty == ty::HEADERS {
                        block.clear();
                        block_stream = frame.stream;
                        block_end_stream = frame.flags & flag::END_STREAM != 0;
                        let mut pad = 0;
                        if frame.flags & flag::PADDED != 0 {
                            pad = usize::from(payload[0]);
                            payload = &payload[1..];
                        }
                        if frame.flags & flag::PRIORITY != 0 {
                            payload = &payload[5..];
                        }
                        payload = &payload[..payload.len() - pad];
                    }
                    block.extend_from_slice(payload);
                    if frame.flags & flag::END_HEADERS == 0 {
                        continue;
                    }
                    let fields = self
                        .decoder
                        .decode(&block)
                        .expect("server sent a valid HPACK block");
                    if block_stream != stream {
                        continue;
                    }
                    let fields: Vec<(String, String)> = fields
                        .into_iter()
                        .map(|(k, v)| {
                            (
                                String::from_utf8_lossy(&k).into_owned(),
                                String::from_utf8_lossy(&v).into_owned(),
                            )
                        })
                        .collect();
                    if resp.headers.is_empty() {
                        resp.headers = fields;
                    } else {
                        resp.trailers = fields;
                    }
                    if block_end_stream {
                        resp.ended = true;
                        return resp;
                    }
                }
                ty::DATA if frame.stream == stream => {
                    let mut payload: &[u8] = &frame.payload;
                    if frame.flags & flag::PADDED != 0 {
                        let pad = usize::from(payload[0]);
                        payload = &payload[1..payload.len() - pad];
                    }
                    resp.data.extend_from_slice(payload);
                    // Give the flow-control credit back so large replies flow.
                    if !frame.payload.is_empty() {
                        let n = u32::try_from(frame.payload.len())
                            .expect("len")
                            .to_be_bytes();
                        self.frame(ty::WINDOW_UPDATE, 0, 0, &n);
                        self.frame(ty::WINDOW_UPDATE, 0, stream, &n);
                    }
                    if frame.flags & flag::END_STREAM != 0 {
                        resp.ended = true;
                        return resp;
                    }
                }
                ty::RST_STREAM if frame.stream == stream => {
                    resp.reset = frame
                        .payload
                        .get(..4)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    return resp;
                }
                ty::GOAWAY => {
                    resp.goaway = frame
                        .payload
                        .get(4..8)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                }
                _ => {}
            }
        }
    }
}

/// Frames `message` with the 5-byte gRPC prefix (uncompressed).
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&u32::try_from(message.len()).expect("len").to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Protobuf encoding of `EchoRequest { message }` (field 1, length-delimited).
pub fn echo_request(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0x0a];
    let mut n = message.len();
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(message);
    out
}

/// The request headers of a well-formed gRPC call to `path`.
pub fn grpc_headers(path: &str) -> Vec<(&str, &str)> {
    vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
}
