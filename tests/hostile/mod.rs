//! Support for `tests/hostile.rs`: a raw HTTP/2 connection built for abuse
//! (every write and read bounded by a timeout, several streams collected at
//! once), server memory readings, and the "a normal client is still served"
//! check with a real tonic client.
//!
//! The frame constants, gRPC framing and request headers come from
//! `tests/common/raw.rs`; this connection type differs from `common::raw::Conn`
//! in that its writes time out (a flood against a server that stopped reading
//! must not hang the test) and it keeps the responses of all streams.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::raw::{flag, ty, Response, PREFACE};
use crate::common::Server;

/// HTTP/2 error codes (RFC 9113 §7).
pub mod code {
    /// NO_ERROR
    pub const NO_ERROR: u32 = 0x0;
    /// PROTOCOL_ERROR
    pub const PROTOCOL_ERROR: u32 = 0x1;
    /// FLOW_CONTROL_ERROR
    pub const FLOW_CONTROL_ERROR: u32 = 0x3;
    /// STREAM_CLOSED
    pub const STREAM_CLOSED: u32 = 0x5;
    /// FRAME_SIZE_ERROR
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    /// REFUSED_STREAM
    pub const REFUSED_STREAM: u32 = 0x7;
    /// CANCEL
    pub const CANCEL: u32 = 0x8;
    /// COMPRESSION_ERROR
    pub const COMPRESSION_ERROR: u32 = 0x9;
    /// ENHANCE_YOUR_CALM
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// SETTINGS identifiers (RFC 9113 §6.5.2).
pub mod setting {
    /// SETTINGS_INITIAL_WINDOW_SIZE
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
}

/// Default bound on any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A GOAWAY frame as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Goaway {
    /// Last-Stream-ID.
    pub last_stream: u32,
    /// Error code.
    pub code: u32,
    /// Debug data, as text.
    pub debug: String,
}

/// Encodes one frame (RFC 9113 §4.1).
pub fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("frame length");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of a SETTINGS frame holding `settings`.
pub fn settings_payload(settings: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 * settings.len());
    for (id, value) in settings {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
    out
}

/// A raw HTTP/2 client connection with bounded writes and reads.
pub struct H2 {
    /// The socket (write timeout set).
    pub stream: TcpStream,
    buf: Vec<u8>,
    encoder: hpack::Encoder<'static>,
    decoder: hpack::Decoder<'static>,
    /// Header block being assembled: (stream, END_STREAM, bytes).
    block: Option<(u32, bool, Vec<u8>)>,
    /// What the server did on each stream so far.
    pub responses: BTreeMap<u32, Response>,
    /// The last GOAWAY received.
    pub goaway: Option<Goaway>,
    /// (type, flags, stream) of every frame received, in order.
    pub log: Vec<(u8, u8, u32)>,
    /// The server closed the connection (EOF or reset).
    pub closed: bool,
    /// Whether DATA received is credited back with WINDOW_UPDATE.
    pub auto_window: bool,
    /// Whether SETTINGS and PING are acknowledged (off until this side has
    /// sent its preface, so a raw-bytes test writes exactly what it means).
    pub answer: bool,
    next_ping: u64,
    /// Our send window on the connection (RFC 9113 §6.9).
    send_window: i64,
    /// The server's SETTINGS_INITIAL_WINDOW_SIZE.
    peer_initial_window: i64,
    /// Our send window per stream, once the stream has been written to.
    stream_windows: BTreeMap<u32, i64>,
}

impl H2 {
    /// Opens a TCP connection; nothing is sent yet.
    pub fn connect(addr: SocketAddr) -> H2 {
        H2::from_stream(TcpStream::connect_timeout(&addr, WAIT).expect("tcp connect"))
    }

    /// Wraps an already connected socket; nothing is sent yet.
    pub fn from_stream(stream: TcpStream) -> H2 {
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_write_timeout(Some(Duration::from_secs(2)))
            .expect("write timeout");
        H2 {
            stream,
            buf: Vec::new(),
            encoder: hpack::Encoder::new(),
            decoder: hpack::Decoder::new(),
            block: None,
            responses: BTreeMap::new(),
            goaway: None,
            log: Vec::new(),
            closed: false,
            auto_window: true,
            answer: false,
            next_ping: 0,
            send_window: 65535,
            peer_initial_window: 65535,
            stream_windows: BTreeMap::new(),
        }
    }

    /// Connects, sends the preface and SETTINGS (`settings`), and waits until
    /// both sides' SETTINGS are acknowledged and the server has answered a
    /// PING, so every limit it advertised is in force.
    pub fn open_with(addr: SocketAddr, settings: &[(u16, u32)]) -> H2 {
        let mut h2 = H2::connect(addr);
        h2.answer = true;
        h2.write(PREFACE);
        h2.frame(ty::SETTINGS, 0, 0, &settings_payload(settings));
        h2.sync();
        h2
    }

    /// [`H2::open_with`] with an empty SETTINGS frame.
    pub fn open(addr: SocketAddr) -> H2 {
        H2::open_with(addr, &[])
    }

    /// Writes raw bytes; false if the write failed or timed out (the server
    /// closed, or stopped reading).
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Writes one frame.
    pub fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> bool {
        self.write(&frame_bytes(kind, flags, stream, payload))
    }

    /// HPACK-encodes `fields` (with the connection's encoder).
    pub fn encode(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        self.encoder
            .encode(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
    }

    /// Writes a HEADERS frame with END_HEADERS.
    pub fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> bool {
        let block = self.encode(fields);
        let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
        self.frame(ty::HEADERS, flags, stream, &block)
    }

    /// Writes a DATA frame.
    pub fn data(&mut self, stream: u32, data: &[u8], end_stream: bool) -> bool {
        let flags = if end_stream { flag::END_STREAM } else { 0 };
        self.frame(ty::DATA, flags, stream, data)
    }

    /// Sends a request body on `id` in DATA frames, within the server's
    /// flow-control windows (reading its WINDOW_UPDATEs while they are
    /// exhausted). False if the server closed or stopped granting credit.
    pub fn send_body(&mut self, id: u32, mut body: &[u8], end_stream: bool) -> bool {
        let initial = self.peer_initial_window;
        self.stream_windows.entry(id).or_insert(initial);
        let deadline = Instant::now() + WAIT;
        loop {
            let stream_window = self.stream_windows.get(&id).copied().unwrap_or(0);
            let room = self.send_window.min(stream_window).clamp(0, 16384) as usize;
            if room == 0 && !body.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || self.read_frame(left).is_none() {
                    return false;
                }
                continue;
            }
            let n = room.min(body.len());
            let (now, rest) = body.split_at(n);
            let last = rest.is_empty();
            if !self.data(id, now, last && end_stream) {
                return false;
            }
            self.send_window -= n as i64;
            if let Some(w) = self.stream_windows.get_mut(&id) {
                *w -= n as i64;
            }
            body = rest;
            if last {
                return true;
            }
        }
    }

    /// Sends as much of `body` on `id` as the server's windows allow now
    /// (reading its frames for up to `wait` while they are exhausted), never
    /// ending the stream; returns the bytes sent. For clients that obey flow
    /// control but never finish (the memory attack).
    pub fn send_available(&mut self, id: u32, mut body: &[u8], wait: Duration) -> usize {
        let initial = self.peer_initial_window;
        self.stream_windows.entry(id).or_insert(initial);
        let mut sent = 0;
        while !body.is_empty() && !self.closed {
            let stream_window = self.stream_windows.get(&id).copied().unwrap_or(0);
            let room = self.send_window.min(stream_window).clamp(0, 16384) as usize;
            if room == 0 {
                if self.read_frame(wait).is_none() {
                    break;
                }
                continue;
            }
            let (now, rest) = body.split_at(room.min(body.len()));
            if !self.data(id, now, false) {
                break;
            }
            self.send_window -= now.len() as i64;
            if let Some(w) = self.stream_windows.get_mut(&id) {
                *w -= now.len() as i64;
            }
            sent += now.len();
            body = rest;
        }
        sent
    }

    /// Sends a PING and reads until its ACK: afterwards the server has
    /// processed everything sent before. Panics if the ACK does not come.
    pub fn sync(&mut self) {
        self.next_ping += 1;
        let payload = (0x5359_4e43_0000_0000 | self.next_ping).to_be_bytes();
        self.frame(ty::PING, 0, 0, &payload);
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left) {
                Some((kind, flags, _, body))
                    if kind == ty::PING && flags & flag::ACK != 0 && body == payload =>
                {
                    return
                }
                Some(_) if !left.is_zero() => {}
                _ => panic!(
                    "no PING ACK (closed: {}, goaway: {:?}, frames: {:?})",
                    self.closed, self.goaway, self.log
                ),
            }
        }
    }

    /// Reads and handles one frame: SETTINGS and PING are acknowledged,
    /// header blocks decoded into [`H2::responses`], DATA credited back (if
    /// [`H2::auto_window`]), RST_STREAM and GOAWAY recorded. Returns the frame,
    /// or `None` on close or after `timeout`.
    pub fn read_frame(&mut self, timeout: Duration) -> Option<(u8, u8, u32, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.parse() {
                self.handle(&frame);
                return Some(frame);
            }
            if self.closed {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => self.closed = true,
            }
        }
    }

    fn parse(&mut self) -> Option<(u8, u8, u32, Vec<u8>)> {
        let head = self.buf.get(..9)?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let kind = head[3];
        let flags = head[4];
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let payload = self.buf.get(9..9 + len)?.to_vec();
        self.buf.drain(..9 + len);
        Some((kind, flags, stream, payload))
    }

    fn handle(&mut self, (kind, flags, stream, payload): &(u8, u8, u32, Vec<u8>)) {
        let (kind, flags, stream) = (*kind, *flags, *stream);
        self.log.push((kind, flags, stream));
        match kind {
            ty::SETTINGS if self.answer && flags & flag::ACK == 0 => {
                for entry in payload.chunks_exact(6) {
                    if u16::from_be_bytes([entry[0], entry[1]]) == 0x4 {
                        let new =
                            i64::from(u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]));
                        let delta = new - self.peer_initial_window;
                        self.peer_initial_window = new;
                        for w in self.stream_windows.values_mut() {
                            *w += delta;
                        }
                    }
                }
                self.frame(ty::SETTINGS, flag::ACK, 0, &[]);
            }
            ty::WINDOW_UPDATE => {
                if let Some(b) = payload.get(..4) {
                    let inc = i64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff);
                    if stream == 0 {
                        self.send_window += inc;
                    } else if let Some(w) = self.stream_windows.get_mut(&stream) {
                        *w += inc;
                    }
                }
            }
            ty::PING if self.answer && flags & flag::ACK == 0 => {
                self.frame(ty::PING, flag::ACK, 0, payload);
            }
            ty::HEADERS => {
                let mut body: &[u8] = payload;
                let mut pad = 0;
                if flags & flag::PADDED != 0 {
                    pad = usize::from(body[0]);
                    body = &body[1..];
                }
                if flags & flag::PRIORITY != 0 {
                    body = &body[5..];
                }
                let body = &body[..body.len() - pad];
                self.block = Some((stream, flags & flag::END_STREAM != 0, body.to_vec()));
                if flags & flag::END_HEADERS != 0 {
                    self.finish_block();
                }
            }
            ty::CONTINUATION => {
                if let Some((_, _, block)) = self.block.as_mut() {
                    block.extend_from_slice(payload);
                }
                if flags & flag::END_HEADERS != 0 {
                    self.finish_block();
                }
            }
            ty::DATA => {
                let mut body: &[u8] = payload;
                if flags & flag::PADDED != 0 {
                    let pad = usize::from(body[0]);
                    body = &body[1..body.len() - pad];
                }
                let resp = self.responses.entry(stream).or_default();
                resp.data.extend_from_slice(body);
                if flags & flag::END_STREAM != 0 {
                    resp.ended = true;
                }
                if self.auto_window && !payload.is_empty() {
                    let n = u32::try_from(payload.len()).expect("len").to_be_bytes();
                    self.frame(ty::WINDOW_UPDATE, 0, 0, &n);
                    if flags & flag::END_STREAM == 0 {
                        self.frame(ty::WINDOW_UPDATE, 0, stream, &n);
                    }
                }
            }
            ty::RST_STREAM => {
                let code = payload
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                self.responses.entry(stream).or_default().reset = code;
            }
            ty::GOAWAY => {
                if let (Some(last), Some(code)) = (payload.get(..4), payload.get(4..8)) {
                    self.goaway = Some(Goaway {
                        last_stream: u32::from_be_bytes([last[0], last[1], last[2], last[3]])
                            & 0x7fff_ffff,
                        code: u32::from_be_bytes([code[0], code[1], code[2], code[3]]),
                        debug: String::from_utf8_lossy(&payload[8..]).into_owned(),
                    });
                }
            }
            _ => {}
        }
    }

    fn finish_block(&mut self) {
        let Some((stream, end_stream, block)) = self.block.take() else {
            return;
        };
        let fields: Vec<(String, String)> = self
            .decoder
            .decode(&block)
            .expect("server sent a valid HPACK block")
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let resp = self.responses.entry(stream).or_default();
        if resp.headers.is_empty() {
            resp.headers = fields;
        } else {
            resp.trailers = fields;
        }
        if end_stream {
            resp.ended = true;
        }
    }

    /// Whether stream `id` is finished (ended or reset).
    pub fn is_done(&self, id: u32) -> bool {
        self.responses
            .get(&id)
            .is_some_and(|r| r.ended || r.reset.is_some())
    }

    /// Reads until every stream in `ids` is finished, the connection closes,
    /// or `timeout` passes; returns whether all finished.
    pub fn wait_all(&mut self, ids: &[u32], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !ids.iter().all(|id| self.is_done(*id)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.read_frame(left).is_none() {
                return ids.iter().all(|id| self.is_done(*id));
            }
        }
        true
    }

    /// Reads until stream `id` finishes (or close / timeout) and returns what
    /// the server sent on it.
    pub fn response(&mut self, id: u32, timeout: Duration) -> Response {
        self.wait_all(&[id], timeout);
        self.responses.remove(&id).unwrap_or_default()
    }

    /// Reads until a GOAWAY arrives (or close / timeout).
    pub fn wait_goaway(&mut self, timeout: Duration) -> Option<Goaway> {
        let deadline = Instant::now() + timeout;
        while self.goaway.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.read_frame(left).is_none() {
                break;
            }
        }
        self.goaway.clone()
    }

    /// Reads (and handles) frames until the server closes the connection or
    /// `timeout` passes; returns whether it closed.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.read_frame(left);
        }
        true
    }

    /// Asserts the connection ends with GOAWAY(`expected`) and is closed;
    /// returns the last GOAWAY (a graceful close may send two, RFC 9113 §6.8).
    #[track_caller]
    pub fn expect_goaway(&mut self, expected: u32, what: &str) -> Goaway {
        let goaway = self.wait_goaway(WAIT);
        match goaway {
            Some(g) if g.code == expected => {
                assert!(
                    self.wait_closed(WAIT),
                    "{what}: GOAWAY {g:?} but the connection stayed open"
                );
                let last = self.goaway.clone().unwrap_or(g);
                assert_eq!(last.code, expected, "{what}: second GOAWAY {last:?}");
                last
            }
            other => panic!(
                "{what}: expected GOAWAY code {expected:#x}, got {other:?} (closed: {}, frames: {:?})",
                self.closed, self.log
            ),
        }
    }
}

/// The server's peak resident set size so far in KiB (`VmHWM` in
/// /proc/PID/status).
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// The server's resident set size in KiB (`VmRSS` in /proc/PID/status).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// One `kB` field of /proc/PID/status.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} line"))
}

/// How many file descriptors the server has open (sockets included).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read fd dir")
        .count()
}

/// Asserts that a normal tonic client on a fresh connection gets a correct
/// Echo reply (retrying briefly: a just-closed connection may still hold
/// its slot for a moment).
#[track_caller]
pub fn assert_served(server: &Server, what: &str) {
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let message = format!("still serving after {what}");
    let outcome = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let attempt = async {
                let channel = tonic::transport::Endpoint::from_shared(url.clone())
                    .expect("url")
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(10))
                    .connect()
                    .await
                    .map_err(|e| format!("connect: {e:?}"))?;
                let mut client = lean_grpc::proto::echo::echo_client::EchoClient::new(channel);
                crate::common::grpc::reply(&mut client, &message)
                    .await
                    .map_err(|s| format!("{s:?}"))
            };
            match attempt.await {
                Ok(reply) => return Ok(reply),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    match outcome {
        Ok(reply) => assert_eq!(reply, format!("You said: {message}"), "{what}"),
        Err(e) => panic!("normal client not served after {what}: {e}"),
    }
}
