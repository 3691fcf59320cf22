//! The HTTP/2 server connection: a sans-IO state machine (RFC 9113).
//!
//! The driver feeds what it reads to [`Connection::handle_input`], the current
//! time to [`Connection::handle_timeout`], and takes out events
//! ([`Connection::poll_event`]), bytes to write ([`Connection::poll_transmit`])
//! and the next deadline ([`Connection::poll_timeout`]). The application
//! answers streams with `send_*`. Nothing here reads a clock, touches a socket
//! or spawns a thread, so every behaviour is testable byte for byte.
//!
//! | file | job |
//! | --- | --- |
//! | `mod.rs` | the state, construction, errors, timers, the public API glue |
//! | `recv.rs` | input: preface, frame splitting, one handler per frame type |
//! | `send.rs` | output: response HEADERS/DATA/trailers under flow control |

mod recv;
mod send;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;

pub use super::error::ErrorCode;
use super::error::{Error, StreamError};
use super::flow::{RecvWindow, SendWindow};
use super::frame::settings::{MAX_MAX_FRAME_SIZE, MAX_WINDOW, MIN_MAX_FRAME_SIZE};
use super::frame::{GoAway, Ping, RstStream, Settings, WindowUpdate};
use super::hpack::{Decoder, Encoder};
use super::rate::Rate;
use super::settings::{self, PeerSettings, DEFAULT_WINDOW};
use super::stream::StreamMap;
pub use super::{Limits, RequestHead, Timestamp};

/// Output waiting for the driver (queued frames plus response DATA that flow
/// control allows) above which [`Connection::wants_input`] turns false: a
/// peer that makes us answer (calls, PING, SETTINGS, resets) without reading
/// cannot grow it.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// Unsent output at which the connection gives up on a driver that keeps
/// feeding input regardless of `wants_input` (GOAWAY ENHANCE_YOUR_CALM).
const OUTPUT_HARD_LIMIT: usize = 1024 * 1024;
/// Undelivered events above which [`Connection::wants_input`] turns false.
const EVENTS_HIGH_WATER: usize = 256;
/// How much response DATA one `poll_transmit` call writes at most.
const TRANSMIT_BUDGET: usize = 64 * 1024;
/// Recently closed streams remembered, to tell "closed" from "never opened"
/// and to ignore frames in flight after we reset a stream (§5.1): at least
/// this many, and at least `max_concurrent_streams` (up to
/// [`MAX_CLOSED_MEMORY`]), so late DATA for any stream of a full window of
/// calls that was just reset is still recognised and ignored.
const MIN_CLOSED_MEMORY: usize = 32;
/// Upper bound on the closed-stream memory (8 bytes an entry, grown only as
/// streams close), whatever `max_concurrent_streams` says.
const MAX_CLOSED_MEMORY: usize = 65_536;
/// Rapid reset (CVE-2023-44487): the peer may reset max(this, 2 x
/// max_concurrent_streams) open streams per [`RESET_WINDOW`] (a rate that
/// decays, see [`Rate`]); each stream the peer lets finish normally takes
/// one reset back, so honest clients that cancel some calls are never cut
/// off. One more is GOAWAY(ENHANCE_YOUR_CALM).
const MIN_PEER_RESETS: u32 = 100;
/// Streams refused over `max_concurrent_streams` are not client errors
/// (REFUSED_STREAM says "retry", RFC 9113 §8.7): they count against
/// `max_local_resets` only beyond max(this, 4 x max_concurrent_streams) per
/// [`RESET_WINDOW`].
const MIN_FREE_REFUSALS: u32 = 256;
/// The window every reset rate is measured over; `max_local_resets` is per window.
const RESET_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);
/// Payload of our keepalive PINGs.
const KEEPALIVE_PING: [u8; 8] = *b"lean-ka!";
/// Payload of the PING that follows the first GOAWAY of a graceful shutdown:
/// its ACK ends the window in which streams in flight may still open.
const SHUTDOWN_PING: [u8; 8] = *b"lean-bye";
/// The largest stream id: the first GOAWAY of a graceful shutdown (§6.8).
const MAX_STREAM_ID: u32 = 0x7fff_ffff;
/// The client connection preface (§3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Something the application must act on.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// New request stream. `end_stream`: the HEADERS frame ended the request (no body).
    Headers {
        /// The stream.
        id: u32,
        /// The validated request head.
        head: RequestHead,
        /// The request has no body.
        end_stream: bool,
    },
    /// Request body bytes (flow control is handled by the core: credit is
    /// returned to the client when this event is polled, unless the
    /// application took that over with [`Connection::defer_credit`]).
    Data {
        /// The stream.
        id: u32,
        /// The bytes.
        data: Bytes,
        /// This is the end of the request.
        end_stream: bool,
    },
    /// Request trailers ended the request side.
    Trailers {
        /// The stream.
        id: u32,
    },
    /// Stream gone (peer RST_STREAM, or the core reset it): drop its state.
    Reset {
        /// The stream.
        id: u32,
        /// The code sent or received.
        code: ErrorCode,
    },
}

/// Something worth a debug log line that the application need not act on;
/// the core does no logging itself, the driver logs these
/// ([`Connection::poll_report`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// We reset a stream for a protocol error (RST_STREAM sent).
    StreamError {
        /// The stream.
        id: u32,
        /// The RST_STREAM code.
        code: ErrorCode,
        /// Which rule the peer broke.
        reason: &'static str,
    },
    /// The peer sent GOAWAY.
    PeerGoAway {
        /// Its error code.
        code: ErrorCode,
        /// The last stream it will have processed.
        last_stream_id: u32,
    },
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::StreamError { id, code, reason } => {
                write!(f, "h2: resetting stream {id}: {code}: {reason}")
            }
            Report::PeerGoAway {
                code,
                last_stream_id,
            } => write!(f, "h2: peer GOAWAY {code} last stream {last_stream_id}"),
        }
    }
}

/// Reports kept for the driver at most; older ones are dropped (a flood of
/// stream errors must not grow memory).
const MAX_REPORTS: usize = 8;

/// Why a `send_*` call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The stream does not exist (never opened, already finished or reset).
    UnknownStream,
    /// The call does not fit the stream's state (DATA before HEADERS, anything after the end).
    InvalidState,
    /// The connection is closed or closing with an error.
    ConnectionClosed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::UnknownStream => "unknown or closed stream",
            SendError::InvalidState => "not allowed in the stream's state",
            SendError::ConnectionClosed => "connection closed",
        })
    }
}

impl std::error::Error for SendError {}

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the rest of the 24-byte client preface; holds how much matched.
    Preface(usize),
    /// Preface seen; the client's SETTINGS must be the next frame (§3.4).
    AwaitSettings,
    /// Streams may come and go.
    Open,
    /// Done: no more input is processed; flush `out` and close.
    Closed,
}

/// A header block being assembled from HEADERS + CONTINUATION frames.
#[derive(Debug)]
struct Block {
    /// The stream it is for; any other frame before END_HEADERS is an error (§6.10).
    id: u32,
    /// END_STREAM was set on the HEADERS frame.
    end_stream: bool,
    /// What to do with the block once complete.
    target: Target,
    /// The raw fragments so far.
    buf: Vec<u8>,
}

/// What a complete header block becomes, decided when its HEADERS frame arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// A new request stream.
    NewStream,
    /// Trailers of an open stream.
    Trailers,
    /// Decode it (HPACK state must stay in sync), then reset the stream with
    /// this code; `counted`: the reset counts against `max_local_resets`.
    Reset { code: ErrorCode, counted: bool },
    /// Decode it and drop it (a stream we already reset).
    Ignore,
}

/// A recently closed stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Closed {
    id: u32,
    /// We reset it: frames the peer sent before seeing our RST_STREAM are ignored.
    reset_by_us: bool,
}

/// One HTTP/2 server connection. See the module docs.
pub struct Connection {
    limits: Limits,
    phase: Phase,
    /// The latest time the driver told us about.
    now: Timestamp,
    /// A partial frame carried over between `handle_input` calls (empty, and
    /// unallocated, most of the time).
    inbuf: Vec<u8>,
    /// Control frames and HEADERS not yet handed to `poll_transmit`.
    out: Vec<u8>,
    events: VecDeque<Event>,
    /// Diagnostics for the driver's log, at most [`MAX_REPORTS`].
    reports: Vec<Report>,
    decoder: Decoder,
    encoder: Encoder,
    peer: PeerSettings,
    streams: StreamMap,
    /// Highest stream id the client has used; new streams must be above it (§5.1.1).
    max_seen_id: u32,
    /// Highest stream id handed to the application: GOAWAY's last-stream-id.
    last_processed_id: u32,
    /// The last [`Connection::closed_capacity`] closed streams, a ring: once
    /// full, the entry at `closed_next` is the oldest and is overwritten next.
    closed: Vec<Closed>,
    closed_next: usize,
    /// Our credit for DATA on the whole connection.
    send_window: SendWindow,
    /// The client's credit for DATA on the whole connection.
    recv_window: RecvWindow,
    /// A header block waiting for CONTINUATION frames.
    block: Option<Box<Block>>,
    /// Stream errors the client caused, per [`RESET_WINDOW`].
    local_resets: Rate,
    /// Open streams the peer reset, per [`RESET_WINDOW`] (rapid reset).
    peer_resets: Rate,
    /// Streams refused over `max_concurrent_streams`, per [`RESET_WINDOW`].
    refusals: Rate,
    /// The peer acknowledged our SETTINGS.
    settings_acked: bool,
    /// We sent GOAWAY: refuse new streams.
    goaway_sent: bool,
    /// Graceful shutdown, first step: GOAWAY(2^31-1) and a PING went out;
    /// streams the client sent before seeing them are still served until
    /// the PING's ACK brings the final GOAWAY.
    draining: bool,
    /// Why the connection was closed for an error (the driver logs it once,
    /// with the peer's address); `None` for normal closes.
    close_error: Option<(ErrorCode, &'static str)>,
    /// Close once no stream is left (after shutdown, peer GOAWAY or EOF).
    close_when_idle: bool,
    /// The peer closed its write side.
    read_closed: bool,
    handshake_deadline: Option<Timestamp>,
    /// When the last stream closed (idle timer start), if none is open.
    idle_since: Option<Timestamp>,
    /// When input last arrived (keepalive timer start).
    last_input: Timestamp,
    /// When our outstanding keepalive PING times out.
    ping_deadline: Option<Timestamp>,
    /// Connection credit for DATA goes back when its event is polled; false
    /// after [`Connection::defer_credit`].
    auto_credit: bool,
    /// Round-robin position for response DATA.
    next_stream: u32,
    /// Scratch space for encoding one header block (kept: a few dozen bytes).
    block_buf: Vec<u8>,
    /// Scratch list of streams with output, reused by `poll_transmit`.
    ready_buf: Vec<u32>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("phase", &self.phase)
            .field("streams", &self.streams.len())
            .field("max_seen_id", &self.max_seen_id)
            .field("out", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A new server connection; our SETTINGS (and a connection WINDOW_UPDATE
    /// if our window is larger than the default) are queued at once (§3.4).
    pub fn new(mut limits: Limits, now: Timestamp) -> Connection {
        // Values the RFC does not allow us to advertise are brought into range (§6.5.2).
        limits.max_frame_size = limits
            .max_frame_size
            .clamp(MIN_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE);
        limits.initial_window_size = limits.initial_window_size.clamp(DEFAULT_WINDOW, MAX_WINDOW);
        let mut out = Vec::new();
        Settings::encode(&settings::ours(&limits), &mut out);
        // The connection window equals a stream's: it bounds what one
        // connection can make us hold (the memory budget counts it once).
        let window = limits.initial_window_size.max(DEFAULT_WINDOW);
        // §6.9.2: the connection window starts at 65,535 and only WINDOW_UPDATE changes it.
        if window > DEFAULT_WINDOW {
            WindowUpdate::encode(0, window - DEFAULT_WINDOW, &mut out);
        }
        Connection {
            decoder: Decoder::new(
                settings::OUR_HEADER_TABLE_SIZE as usize,
                limits.max_header_list_size as usize,
            ),
            encoder: Encoder::new(),
            phase: Phase::Preface(0),
            now,
            inbuf: Vec::new(),
            out,
            events: VecDeque::new(),
            reports: Vec::new(),
            peer: PeerSettings::default(),
            streams: StreamMap::default(),
            max_seen_id: 0,
            last_processed_id: 0,
            closed: Vec::new(),
            closed_next: 0,
            send_window: SendWindow::new(DEFAULT_WINDOW),
            recv_window: RecvWindow::new(window, window),
            block: None,
            local_resets: Rate::new(
                u32::try_from(limits.max_local_resets).unwrap_or(u32::MAX),
                RESET_WINDOW,
            ),
            peer_resets: Rate::new(
                MIN_PEER_RESETS.max(limits.max_concurrent_streams.saturating_mul(2)),
                RESET_WINDOW,
            ),
            refusals: Rate::new(
                MIN_FREE_REFUSALS.max(limits.max_concurrent_streams.saturating_mul(4)),
                RESET_WINDOW,
            ),
            settings_acked: false,
            goaway_sent: false,
            draining: false,
            close_error: None,
            close_when_idle: false,
            read_closed: false,
            handshake_deadline: now.checked_add(limits.handshake_timeout),
            idle_since: None,
            last_input: now,
            ping_deadline: None,
            auto_credit: true,
            next_stream: 0,
            block_buf: Vec::new(),
            ready_buf: Vec::new(),
            limits,
        }
    }

    /// The next event for the application, if any. Polling a [`Event::Data`]
    /// returns its bytes to the client's connection-level credit; the
    /// stream's credit comes back only through
    /// [`Connection::release_stream_credit`], once the application consumed
    /// the bytes.
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        if self.events.is_empty() && self.events.capacity() > 64 {
            // A burst is over: give the memory back (idle connections stay small).
            self.events = VecDeque::new();
        }
        if let Event::Data { ref data, .. } = ev {
            if self.auto_credit {
                let n = u32::try_from(data.len()).unwrap_or(u32::MAX);
                self.release_credit(0, n);
            }
        }
        Some(ev)
    }

    /// The next diagnostic for the driver's debug log, oldest first.
    pub fn poll_report(&mut self) -> Option<Report> {
        if self.reports.is_empty() {
            return None;
        }
        Some(self.reports.remove(0))
    }

    /// Keeps `r` for [`Connection::poll_report`], dropping the oldest past the bound.
    fn report(&mut self, r: Report) {
        if self.reports.len() >= MAX_REPORTS {
            self.reports.remove(0);
        }
        self.reports.push(r);
    }

    /// From now on the connection-level credit of DATA does not go back
    /// when its event is polled either: the application hands it back with
    /// [`Connection::release_data`] once it no longer holds the bytes (or
    /// with [`Connection::release_connection_credit`] once it accounted for
    /// them elsewhere), and may grant more against a memory reservation with
    /// [`Connection::grant`]. The memory budget's backpressure.
    pub fn defer_credit(&mut self) {
        self.auto_credit = false;
    }

    /// The application no longer holds `n` bytes of stream `id`'s DATA:
    /// their stream and connection credit go back (WINDOW_UPDATE when a
    /// batch is due).
    pub fn release_data(&mut self, id: u32, n: usize) {
        self.release_credit(id, u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Returns `n` bytes of connection credit only (after
    /// [`Connection::defer_credit`]): bytes a blocked stream still holds,
    /// now covered by a memory reservation, stop holding up the others.
    pub fn release_connection_credit(&mut self, n: usize) {
        self.release_credit(0, u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Returns `n` bytes of stream `id`'s receive credit to the client
    /// (WINDOW_UPDATE when a batch is due), for request DATA the application
    /// has consumed. Holding it back is backpressure: the client can send at
    /// most one stream window more, so a slow consumer slows its client
    /// without holding up the connection's other streams.
    pub fn release_stream_credit(&mut self, id: u32, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n == 0 || self.phase == Phase::Closed {
            return;
        }
        if let Some(s) = self
            .streams
            .get_mut(id)
            .filter(|s| !s.state.is_recv_closed())
        {
            if let Some(inc) = s.recv_window.release(n) {
                WindowUpdate::encode(id, inc, &mut self.out);
            }
        }
    }

    /// Grants `n` bytes of credit on stream `id` and the connection at once,
    /// beyond the windows (the application reserved memory for them).
    pub fn grant(&mut self, id: u32, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n == 0 || self.phase == Phase::Closed {
            return;
        }
        let Some(s) = self
            .streams
            .get_mut(id)
            .filter(|s| !s.state.is_recv_closed())
        else {
            return;
        };
        if let Some(inc) = s.recv_window.grant(n) {
            WindowUpdate::encode(id, inc, &mut self.out);
        }
        if let Some(inc) = self.recv_window.grant(n) {
            WindowUpdate::encode(0, inc, &mut self.out);
        }
    }

    /// Takes back `n` bytes of connection credit granted with
    /// [`Connection::grant`] that the peer did not use (its stream ended):
    /// later releases pay it off first, so the window does not grow.
    pub fn revoke_credit(&mut self, n: usize) {
        if n > 0 {
            self.recv_window
                .revoke(u32::try_from(n).unwrap_or(u32::MAX));
        }
    }

    /// Our receive window per stream (what a message needs no reservation for).
    pub fn recv_window_size(&self) -> usize {
        self.limits.initial_window_size as usize
    }

    /// DATA the client may still send on stream `id`: the smaller of its
    /// stream credit and the connection credit.
    pub fn recv_credit(&self, id: u32) -> usize {
        self.streams.get(id).map_or(0, |s| {
            s.recv_window.window().min(self.recv_window.window()) as usize
        })
    }

    /// Hands consumed DATA credit back (WINDOW_UPDATE when a batch is due).
    fn release_credit(&mut self, id: u32, n: u32) {
        if n == 0 || self.phase == Phase::Closed {
            return;
        }
        if let Some(inc) = self.recv_window.release(n) {
            WindowUpdate::encode(0, inc, &mut self.out);
        }
        // No stream credit for a stream whose request side is over: it cannot send more.
        if let Some(s) = self
            .streams
            .get_mut(id)
            .filter(|s| !s.state.is_recv_closed())
        {
            if let Some(inc) = s.recv_window.release(n) {
                WindowUpdate::encode(id, inc, &mut self.out);
            }
        }
    }

    /// The earliest time [`Connection::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.phase == Phase::Closed {
            return None;
        }
        let mut t = self.handshake_deadline;
        let mut earliest = |d: Option<Timestamp>| {
            if let Some(d) = d {
                t = Some(t.map_or(d, |t| t.min(d)));
            }
        };
        if self.phase == Phase::Open {
            if let (Some(since), Some(idle)) = (self.idle_since, self.limits.idle_timeout) {
                earliest(since.checked_add(idle));
            }
            if let Some(interval) = self.limits.keepalive_interval {
                earliest(self.ping_deadline.or(self.last_input.checked_add(interval)));
            }
        }
        t
    }

    /// Runs the timers due at `now`: handshake, idle and keepalive.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now = now;
        match self.phase {
            Phase::Closed => return,
            Phase::Preface(_) | Phase::AwaitSettings => {
                if self.handshake_deadline.is_some_and(|d| now >= d) {
                    if self.phase == Phase::AwaitSettings {
                        // The client spoke HTTP/2 but never sent its SETTINGS.
                        self.close_with(ErrorCode::SettingsTimeout, "handshake timeout");
                    } else {
                        // Not (yet) an HTTP/2 peer: just close.
                        self.close_error = Some((
                            ErrorCode::SettingsTimeout,
                            "no HTTP/2 preface within the handshake timeout",
                        ));
                        self.close_silently();
                    }
                }
                return;
            }
            Phase::Open => {}
        }
        if self.handshake_deadline.is_some_and(|d| now >= d) {
            // §6.5.3: "If the sender of a SETTINGS frame does not receive an
            // acknowledgment within a reasonable amount of time, it MAY issue a
            // connection error of type SETTINGS_TIMEOUT."
            return self.close_with(ErrorCode::SettingsTimeout, "SETTINGS not acknowledged");
        }
        if let (Some(since), Some(idle)) = (self.idle_since, self.limits.idle_timeout) {
            if since.checked_add(idle).is_some_and(|d| now >= d) {
                return self.close_with(ErrorCode::NoError, "idle timeout");
            }
        }
        if let Some(deadline) = self.ping_deadline {
            if now >= deadline {
                self.close_with(ErrorCode::NoError, "keepalive timeout");
            }
        } else if let Some(interval) = self.limits.keepalive_interval {
            if self
                .last_input
                .checked_add(interval)
                .is_some_and(|d| now >= d)
            {
                Ping::encode(KEEPALIVE_PING, false, &mut self.out);
                // (A deadline too far to represent means "never".)
                self.ping_deadline = now.checked_add(self.limits.keepalive_timeout);
            }
        }
    }

    /// The peer closed its side (EOF). Requests still arriving can never
    /// finish and are reset; complete requests still get their responses.
    pub fn handle_read_closed(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        self.read_closed = true;
        self.inbuf = Vec::new();
        self.block = None;
        if self.phase != Phase::Open {
            return self.close_silently();
        }
        let unfinished: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| !s.state.is_recv_closed())
            .map(|(id, _)| id)
            .collect();
        for id in unfinished {
            self.drop_stream(id, ErrorCode::Cancel, false);
        }
        self.close_when_idle = true;
        self.maybe_finish();
    }

    /// False while too much output waits to be taken by
    /// [`Connection::poll_transmit`] or too many events are unpolled: the
    /// driver should stop reading until this turns true again.
    ///
    /// Waiting output is the queued frames plus the response DATA that flow
    /// control already allows. A driver takes output whenever its socket
    /// has room, so this grows only while the peer is not reading: it stops
    /// being read. DATA held back by the peer's own flow-control windows is
    /// not counted, so a peer that is slow to grant credit is still read
    /// (its WINDOW_UPDATEs must get through).
    pub fn wants_input(&self) -> bool {
        self.phase != Phase::Closed
            && !self.read_closed
            && self.events.len() < EVENTS_HIGH_WATER
            && self.out.len() + self.sendable_data() < OUTPUT_HIGH_WATER
    }

    /// Response DATA that [`Connection::poll_transmit`] could write now.
    fn sendable_data(&self) -> usize {
        let streams: usize = self.streams.iter().map(|(_, s)| s.sendable()).sum();
        streams.min(self.send_window.available())
    }

    /// Nothing more will happen: close the socket after writing what
    /// [`Connection::poll_transmit`] returned.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed && self.out.is_empty()
    }

    /// Graceful shutdown in two steps (RFC 9113 §6.8): GOAWAY(NO_ERROR,
    /// 2^31-1) and a PING; streams the client opened before it saw them are
    /// still served (a health Check then answers NOT_SERVING rather than
    /// being refused). The PING's ACK, a round trip later, brings the final
    /// GOAWAY(NO_ERROR, last processed stream): new streams are refused and
    /// the connection closes once the open ones are finished.
    pub fn shutdown(&mut self) {
        match self.phase {
            Phase::Closed => {}
            Phase::Preface(_) => self.close_silently(),
            Phase::AwaitSettings | Phase::Open => {
                if !self.goaway_sent && !self.draining {
                    self.draining = true;
                    GoAway::encode(MAX_STREAM_ID, ErrorCode::NoError, b"", &mut self.out);
                    Ping::encode(SHUTDOWN_PING, false, &mut self.out);
                }
            }
        }
    }

    /// The second step of [`Connection::shutdown`], once the client answered
    /// the PING: the final GOAWAY, then close when idle.
    fn finish_draining(&mut self) {
        if !self.draining || self.goaway_sent || self.phase == Phase::Closed {
            return;
        }
        self.draining = false;
        self.goaway_sent = true;
        GoAway::encode(
            self.last_processed_id,
            ErrorCode::NoError,
            b"",
            &mut self.out,
        );
        self.close_when_idle = true;
        self.maybe_finish();
    }

    /// Response DATA queued on stream `id` and not yet written (0 for an
    /// unknown stream).
    pub fn queued_data(&self, id: u32) -> usize {
        self.streams.get(id).map_or(0, |s| s.queued)
    }

    /// The error code and reason this connection was closed for, if it was
    /// closed for an error (a protocol violation, a flood, a handshake
    /// timeout); `None` while open and after a normal close.
    pub fn close_error(&self) -> Option<(ErrorCode, &'static str)> {
        self.close_error
    }

    /// Streams open or half-closed (what MAX_CONCURRENT_STREAMS counts).
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Since when the connection has had no open stream (since its last
    /// input while still in the handshake); `None` while a stream is open.
    /// The driver's fair connection slots give way to the longest idle.
    pub fn idle_since(&self) -> Option<Timestamp> {
        if !self.streams.is_empty() {
            return None;
        }
        Some(self.idle_since.unwrap_or(self.last_input))
    }

    /// Connection error: GOAWAY with `code` and the last processed stream, then closed (§5.4.1).
    fn close_with(&mut self, code: ErrorCode, reason: &'static str) {
        if self.phase == Phase::Closed {
            return;
        }
        if code != ErrorCode::NoError {
            self.close_error = Some((code, reason));
        }
        GoAway::encode(
            self.last_processed_id,
            code,
            reason.as_bytes(),
            &mut self.out,
        );
        self.goaway_sent = true;
        self.close_silently_with(code);
    }

    /// Closes without a GOAWAY (no HTTP/2 peer, or after one was sent).
    fn close_silently(&mut self) {
        self.close_silently_with(ErrorCode::Cancel);
    }

    fn close_silently_with(&mut self, code: ErrorCode) {
        self.phase = Phase::Closed;
        self.inbuf = Vec::new();
        self.block = None;
        self.closed = Vec::new();
        // Every live stream was announced (its Headers event is queued
        // in the same step that creates it).
        for (id, _) in self.streams.drain() {
            self.events.push_back(Event::Reset { id, code });
        }
    }

    /// Handles an error from the receive path.
    fn on_error(&mut self, e: Error) {
        match e {
            Error::Conn(c) => self.close_with(c.code, c.reason),
            Error::Stream(s) => self.stream_error(s),
        }
    }

    /// Stream error: RST_STREAM with the code (§5.4.2), counted against `max_local_resets`.
    fn stream_error(&mut self, e: StreamError) {
        self.report(Report::StreamError {
            id: e.id,
            code: e.code,
            reason: e.reason,
        });
        self.reset_stream(e.id, e.code, true);
    }

    /// Sends RST_STREAM and forgets the stream; `counted`: it was the client's fault.
    fn reset_stream(&mut self, id: u32, code: ErrorCode, counted: bool) {
        if self.phase == Phase::Closed {
            return;
        }
        RstStream::encode(id, code, &mut self.out);
        self.drop_stream(id, code, true);
        if counted {
            self.count_local_reset();
        }
    }

    /// Counts a stream error the client caused; past `max_local_resets` per
    /// [`RESET_WINDOW`] the connection goes (GOAWAY ENHANCE_YOUR_CALM).
    fn count_local_reset(&mut self) {
        if self.local_resets.record(self.now) {
            self.close_with(ErrorCode::EnhanceYourCalm, "too many stream errors");
        }
    }

    /// Forgets a stream, telling the application if it knew about it.
    fn drop_stream(&mut self, id: u32, code: ErrorCode, reset_by_us: bool) {
        if self.streams.remove(id).is_some() {
            self.events.push_back(Event::Reset { id, code });
        }
        self.remember_closed(id, reset_by_us);
        self.on_stream_gone();
    }

    /// Forgets a finished stream (both sides ended).
    fn finish_stream(&mut self, id: u32) {
        if self.streams.remove(id).is_some() {
            // A call completed normally: it pays for one peer reset.
            self.peer_resets.forgive(self.now);
            self.remember_closed(id, false);
            self.on_stream_gone();
        }
    }

    fn remember_closed(&mut self, id: u32, reset_by_us: bool) {
        if let Some(c) = self.closed.iter_mut().find(|c| c.id == id) {
            c.reset_by_us |= reset_by_us;
            return;
        }
        let entry = Closed { id, reset_by_us };
        let capacity = self.closed_capacity();
        if self.closed.len() < capacity {
            self.closed.push(entry);
        } else {
            if let Some(oldest) = self.closed.get_mut(self.closed_next) {
                *oldest = entry;
            }
            self.closed_next = (self.closed_next + 1) % capacity;
        }
    }

    /// How many closed streams are remembered (see [`MIN_CLOSED_MEMORY`]).
    fn closed_capacity(&self) -> usize {
        (self.limits.max_concurrent_streams as usize).clamp(MIN_CLOSED_MEMORY, MAX_CLOSED_MEMORY)
    }

    fn on_stream_gone(&mut self) {
        if self.streams.is_empty() {
            self.idle_since = Some(self.now);
        }
        self.maybe_finish();
    }

    /// Closes a draining connection once its last stream is done.
    fn maybe_finish(&mut self) {
        if self.close_when_idle && self.streams.is_empty() && self.phase != Phase::Closed {
            self.close_silently();
        }
    }
}
