//! The runtime-free driver: `std::net` sockets around the sans-IO
//! [`Session`], on one thread.
//!
//! Why one thread and a readiness loop (the `polling` crate: epoll on Linux,
//! kqueue on the BSDs/macOS) rather than a thread per connection:
//!
//! * **Memory.** A connection costs its socket, a [`Session`] and, only while
//!   it has unsent output, an output `Vec`; there is no per-connection thread
//!   stack. Reads go through one shared buffer for all connections. Measured
//!   (x86_64 release): 250 idle HTTP/2 connections add ~200 KB RSS (< 1 KB
//!   each); the idle process is ~2 MB RSS, of which ~450 KB private.
//! * **No idle wakeups.** The loop sleeps in the poller until a socket is
//!   ready or the earliest connection timer (handshake, idle, keepalive, call
//!   deadline) is due; with no connections it sleeps without a timeout.
//! * **Batching.** One wakeup handles every ready socket, and one read feeds
//!   every HTTP/2 frame (so every stream) it holds.
//! * **Fairness.** Sockets are non-blocking and reads per wakeup are bounded.
//!   A client that does not read its answers only fills its own buffers: we
//!   stop reading from it while the session reports `wants_input() == false`
//!   (its answers pile up unsent, see [`crate::h2::Connection::wants_input`]),
//!   so it can neither block nor swamp the others (nor make us hold more than
//!   ~64 KiB of replies for it beyond the one being written).
//!
//! `polling` 2.x is used because its registration API is safe; 3.x made
//! `add` an `unsafe fn`, and this crate forbids unsafe code. Its tree is
//! `libc`, `cfg-if` and `log`: no async runtime.
//!
//! Connection slots are fair ([`super::slots`]): at `max_connections` (or
//! `max_connections_per_ip`) a new connection takes the slot of the
//! longest-idle connection without an open call, which gets GOAWAY(NO_ERROR)
//! and closes. Only when every slot has an open call is the new one refused:
//! [`REFUSAL`] (SETTINGS + GOAWAY(REFUSED_STREAM), the same bytes as the
//! tokio flavour), sent inside TLS when TLS is on, then a FIN. Refusals are
//! logged as one aggregate line per window, not one line each.
//!
//! Every connection we close after a GOAWAY (refused, evicted, idle,
//! drained) lingers: our side is shut and its input drained until the client
//! closes or [`REFUSE_LINGER`] passes, so closing with unread input cannot
//! send an RST that destroys the GOAWAY at the client.
//!
//! TLS (feature `tls`): each socket is a [`transport::Transport`], either the
//! plain socket or `tls::TlsStream` (rustls, itself sans-IO, over the same
//! non-blocking socket). The loop is unchanged but for two things: a
//! transport's own queued records (handshake, alerts) keep write interest,
//! and `flush` sends them first. The TLS handshake and the HTTP/2 preface
//! share the session's handshake timer.
//!
//! Signals: SIGINT/SIGTERM are turned into a byte on a socket pair by
//! `signal-hook`'s self-pipe, and that socket is polled like the others.
//! On the first signal: health turns NOT_SERVING, the listener is closed,
//! every session sends GOAWAY, and the loop runs until all connections are
//! closed or `drain_timeout` has passed. A second signal ends the drain at once.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use polling::{Event, Poller};

use super::refuse::REFUSAL;
use super::slots::{self, Admission, Occupant, RefusalLog};
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;

use self::transport::Transport;

use super::ServeError;
use crate::config::Config;
use crate::grpc::api::Router;
use crate::grpc::budget::Budget;
use crate::grpc::services;
use crate::grpc::session::{Limits, Session};
use crate::h2::Timestamp;
use std::rc::Rc;

/// Poller key of the listening socket.
const LISTENER: usize = 0;
/// Poller key of the signal self-pipe.
const SIGNAL: usize = 1;
/// Keys from here on are connection slots (`key - FIRST_CONN`).
const FIRST_CONN: usize = 2;
/// One read buffer shared by every connection.
const READ_BUF: usize = 32 * 1024;
// A TLS read must be able to take everything rustls decrypts at once.
#[cfg(feature = "tls")]
const _: () = assert!(READ_BUF >= tls::MIN_READ_BUF);
/// Reads per connection per wakeup, so one busy client cannot starve the rest.
const READS_PER_WAKEUP: usize = 4;
/// After an accept error other than "no more pending" (typically EMFILE:
/// out of file descriptors), the listener rests this long instead of
/// spinning on a connection it cannot take.
const ACCEPT_BACKOFF_MS: u64 = 100;
/// How long a closed connection stays open (our side shut) so the client
/// reads the GOAWAY before the socket closes: closing with its input still
/// unread would send RST, which may discard the GOAWAY at the client.
const REFUSE_LINGER: Duration = Duration::from_secs(1);
/// Connections lingering at once (and TLS refusals in progress); beyond
/// this they are closed right after the write, so a connection flood cannot
/// pile them up.
const MAX_LINGERING_REFUSALS: usize = 64;
/// Input a lingering connection may still send before it is cut off: a
/// client that keeps flooding after our GOAWAY gets a reset, not our time.
const LINGER_READ_LIMIT: usize = 256 * 1024;
/// An emptied output buffer larger than this is freed rather than kept.
const KEEP_OUT_CAPACITY: usize = 4 * 1024;

/// What a connection is registered for with the poller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Interest {
    /// Wants to know when the socket has bytes (or EOF) to read.
    read: bool,
    /// Has unsent output and waits for room in the socket.
    write: bool,
}

/// One accepted connection.
struct Conn {
    /// The non-blocking socket, plain or TLS.
    stream: Transport,
    /// gRPC + HTTP/2 state.
    session: Session,
    /// Output taken from the session but not yet written; empty (and freed
    /// when large) between bursts.
    out: Vec<u8>,
    /// How much of `out` is written.
    written: usize,
    /// The peer sent EOF; nothing more to read.
    read_closed: bool,
    /// What the poller is armed for; `None` after an event fired (polling's
    /// oneshot mode disarms a source once it reports).
    armed: Option<Interest>,
    /// A socket error ended the connection.
    failed: bool,
    /// The client's address, for the one log line a connection error gets.
    peer: SocketAddr,
    /// Gave up its slot (evicted for a new connection, or refused): it no
    /// longer counts against the connection caps.
    leaving: bool,
    /// A refused TLS connection: only [`REFUSAL`] goes out (inside TLS),
    /// then it closes, at the latest at this instant.
    refusing: Option<Instant>,
}

impl Conn {
    /// What the slot decision needs to know about this connection.
    /// (`epoch` turns the core's timestamps back into instants.)
    fn occupant(&self, epoch: Instant) -> Occupant {
        Occupant {
            ip: self.peer.ip(),
            idle_since: self.session.idle_since().map(|t| epoch + t),
            leaving: self.leaving,
        }
    }
}

/// The listening server: poller, listener, connections, shutdown state.
struct Server {
    /// The readiness poller every socket is registered with.
    poller: Poller,
    /// `None` once shutdown started (new connections are refused by the OS).
    listener: Option<TcpListener>,
    /// Read end of the signal self-pipe.
    signals: UnixStream,
    /// Connection slots; the index + [`FIRST_CONN`] is the poller key.
    conns: Vec<Option<Conn>>,
    /// Number of `Some` slots.
    live: usize,
    /// The configuration (driver settings; sessions get `limits`).
    config: Config,
    /// What every session is allowed, from `config`.
    limits: Limits,
    /// The services every session serves.
    router: Rc<Router>,
    /// The zero of the timestamps the sessions get (the core reads no clock).
    epoch: Instant,
    /// The memory pool every session shares (see [`crate::grpc::budget`]).
    budget: Budget,
    /// Set when shutdown started: the instant the drain gives up.
    drain_deadline: Option<Instant>,
    /// A second signal asked to stop draining.
    force_stop: bool,
    /// Set after an accept error: when to re-arm the listener.
    accept_paused_until: Option<Instant>,
    /// Closed connections (our side shut) waiting, until the instant, for
    /// the client to close; oldest first.
    /// The bytes each may still drain is in the third field.
    lingering: Vec<(TcpStream, Instant, usize)>,
    /// Refusals, logged as an aggregate.
    refusals: RefusalLog,
    /// The shared read buffer.
    buf: Box<[u8]>,
    /// Set when serving TLS: every accepted socket starts a handshake.
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// Runs the runtime-free server (echo-server's services) until
/// SIGINT/SIGTERM and a drain.
pub fn run(config: Config) -> Result<(), ServeError> {
    let router = services::router(config.max_message_size);
    run_with(config, router)
}

/// Runs the runtime-free server with the services in `router` until
/// SIGINT/SIGTERM and a drain: how a program serves its own services
/// (README, "Add your own service").
pub fn run_with(config: Config, router: Router) -> Result<(), ServeError> {
    let listener =
        TcpListener::bind(config.listen).map_err(|e| ServeError::Bind(config.listen, e))?;
    let (signals, notify) = UnixStream::pair().map_err(ServeError::Io)?;
    notify.set_nonblocking(true).map_err(ServeError::Io)?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let pipe = notify.try_clone().map_err(ServeError::Io)?;
        signal_hook::low_level::pipe::register(signal, pipe).map_err(ServeError::Io)?;
    }
    serve(listener, signals, config, router)
}

/// Serves `router`'s services on `listener` until a byte arrives on
/// `signals` (written by the signal handler, or by a test) and the drain
/// ends.
pub fn serve(
    listener: TcpListener,
    signals: UnixStream,
    config: Config,
    router: Router,
) -> Result<(), ServeError> {
    listener.set_nonblocking(true).map_err(ServeError::Io)?;
    signals.set_nonblocking(true).map_err(ServeError::Io)?;
    #[cfg(feature = "tls")]
    let tls = super::tls::server_config(&config).map_err(ServeError::Tls)?;
    let poller = Poller::new().map_err(ServeError::Io)?;
    poller
        .add(&listener, Event::readable(LISTENER))
        .map_err(ServeError::Io)?;
    poller
        .add(&signals, Event::readable(SIGNAL))
        .map_err(ServeError::Io)?;
    let plan = config.memory_plan().map_err(ServeError::Config)?;
    super::log_startup(listener.local_addr().map_err(ServeError::Io)?, &config);
    let limits = config.session_limits();
    let router = Rc::new(router);
    let mut server = Server {
        budget: Budget::new(plan.pool),
        poller,
        listener: Some(listener),
        signals,
        conns: Vec::new(),
        live: 0,
        config,
        drain_deadline: None,
        force_stop: false,
        accept_paused_until: None,
        lingering: Vec::new(),
        refusals: RefusalLog::default(),
        buf: vec![0; READ_BUF].into_boxed_slice(),
        limits,
        router,
        epoch: Instant::now(),
        #[cfg(feature = "tls")]
        tls,
    };
    server.serve()
}

impl Server {
    /// `now` as the sessions see it: the time since the server started.
    fn stamp(&self, now: Instant) -> Timestamp {
        now.saturating_duration_since(self.epoch)
    }

    /// The readiness loop.
    fn serve(&mut self) -> Result<(), ServeError> {
        let mut events = Vec::new();
        let mut next_timer = None;
        loop {
            if let Some(deadline) = self.drain_deadline {
                if self.live == 0 || self.force_stop || Instant::now() >= deadline {
                    break;
                }
            }
            let timeout = next_timer
                .into_iter()
                .chain(self.drain_deadline)
                .chain(self.accept_paused_until)
                .chain(self.lingering.first().map(|r| r.1))
                .chain(self.refusals.due())
                .min()
                .map(|t: Instant| t.saturating_duration_since(Instant::now()));
            events.clear();
            match self.poller.wait(&mut events, timeout) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ServeError::Io(e)),
            }
            let now = Instant::now();
            for ev in &events {
                match ev.key {
                    LISTENER => self.accept(now)?,
                    SIGNAL => self.on_signal(now)?,
                    key => self.on_ready(key - FIRST_CONN, ev.readable, now),
                }
            }
            next_timer = self.tick(now);
            // Lingering connections go once the client closed or their time is up.
            self.lingering.retain_mut(|(stream, until, allowance)| {
                *until > now && !drain_to_eof(stream, allowance)
            });
            if let Some(line) = self.refusals.flush(now) {
                crate::warn!("{line}");
            }
            if self.accept_paused_until.is_some_and(|t| t <= now) {
                self.accept_paused_until = None;
                if let Some(listener) = &self.listener {
                    self.poller
                        .modify(listener, Event::readable(LISTENER))
                        .map_err(ServeError::Io)?;
                }
            }
        }
        let abandoned = self
            .conns
            .iter()
            .flatten()
            .map(|c| c.session.open_calls())
            .sum();
        super::log_shutdown_done(abandoned);
        Ok(())
    }

    /// Accepts every pending connection.
    fn accept(&mut self, now: Instant) -> Result<(), ServeError> {
        loop {
            let Some(listener) = &self.listener else {
                return Ok(());
            };
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Running out of descriptors (or a transient failure): the
                // pending connection stays queued, so re-arming now would
                // spin. Rest the listener briefly; `serve` re-arms it.
                Err(e) => {
                    // (Not `{:?}` of a Duration: its formatter alone is ~2 KB of binary.)
                    crate::warn!("accept failed: {e}; pausing accepts for {ACCEPT_BACKOFF_MS} ms");
                    self.accept_paused_until = Some(now + Duration::from_millis(ACCEPT_BACKOFF_MS));
                    return Ok(());
                }
            };
            let per_ip = self.config.max_connections_per_ip;
            let admission = if self.live >= self.config.max_connections || per_ip.is_some() {
                let epoch = self.epoch;
                let occupants = self
                    .conns
                    .iter()
                    .enumerate()
                    .filter_map(|(slot, c)| Some((slot, c.as_ref()?.occupant(epoch))));
                slots::admit(occupants, peer.ip(), self.config.max_connections, per_ip)
            } else {
                Admission::Admit
            };
            match admission {
                Admission::Admit => {}
                Admission::Evict(slot) => {
                    if let Some(Some(victim)) = self.conns.get_mut(slot) {
                        crate::debug!(
                            "{}: idle connection gives its slot to {peer} (GOAWAY)",
                            victim.peer
                        );
                        victim.leaving = true;
                        victim.session.shutdown();
                    }
                }
                Admission::Refuse(why) => {
                    if let Some(line) = self.refusals.refused(now, &peer.to_string(), why) {
                        crate::warn!("{line}");
                    }
                    self.refuse(stream, peer, now);
                    continue;
                }
            }
            if let Err(e) = self.add_conn(stream, peer, now, None) {
                crate::warn!("cannot set up connection from {peer}: {e}");
            } else {
                crate::debug!("connection from {peer}");
            }
        }
        if let Some(listener) = &self.listener {
            self.poller
                .modify(listener, Event::readable(LISTENER))
                .map_err(ServeError::Io)?;
        }
        Ok(())
    }

    /// Answers a connection refused by the caps with the shared [`REFUSAL`]
    /// bytes (SETTINGS + GOAWAY(REFUSED_STREAM)), never blocking, shuts our
    /// side, and lets it linger briefly (see [`REFUSE_LINGER`]). With TLS on,
    /// the bytes go inside TLS: the connection is served as a refusing
    /// [`Conn`] (handshake, then REFUSAL, then close) within the handshake
    /// timeout; beyond [`MAX_LINGERING_REFUSALS`] of those it is just closed.
    fn refuse(&mut self, stream: TcpStream, peer: SocketAddr, now: Instant) {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            let refusing = self.conns.iter().flatten().filter(|c| c.refusing.is_some());
            if refusing.count() < MAX_LINGERING_REFUSALS {
                let until = now + self.config.handshake_timeout;
                if let Err(e) = self.add_conn(stream, peer, now, Some(until)) {
                    crate::debug!("{peer}: cannot refuse over TLS: {e}");
                }
            }
            return;
        }
        let _ = peer;
        // A fresh socket's send buffer always takes these 56 bytes; if it
        // does not, the client just sees the close.
        let _ = stream.set_nonblocking(true);
        let _ = (&stream).write(&REFUSAL);
        self.linger(stream, now);
    }

    /// Shuts our side of a closed connection's socket and keeps it (bounded)
    /// until the client closes or [`REFUSE_LINGER`] passes.
    fn linger(&mut self, stream: TcpStream, now: Instant) {
        let _ = stream.shutdown(Shutdown::Write);
        if self.lingering.len() < MAX_LINGERING_REFUSALS {
            self.lingering
                .push((stream, now + REFUSE_LINGER, LINGER_READ_LIMIT));
        } else {
            drain_to_eof(&stream, &mut 0);
        }
    }

    /// Registers a new connection in a free slot; `refusing`: a refused TLS
    /// connection that only gets [`REFUSAL`], by that instant.
    fn add_conn(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        now: Instant,
        refusing: Option<Instant>,
    ) -> io::Result<()> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(self.config.tcp_nodelay)?;
        #[cfg(feature = "tls")]
        let stream = match &self.tls {
            Some(config) => {
                let config = std::sync::Arc::clone(config);
                Transport::Tls(Box::new(tls::TlsStream::new(stream, config)?))
            }
            None => Transport::Plain(stream),
        };
        #[cfg(not(feature = "tls"))]
        let stream = Transport::Plain(stream);
        let slot = match self.conns.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        // Registered with no interest; `tick` arms it for writing our SETTINGS.
        self.poller.add(&stream, Event::none(slot + FIRST_CONN))?;
        let conn = Conn {
            stream,
            session: Session::with_budget(
                &self.limits,
                Rc::clone(&self.router),
                self.budget.clone(),
                self.stamp(now),
            ),
            out: if refusing.is_some() {
                REFUSAL.to_vec()
            } else {
                Vec::new()
            },
            written: 0,
            read_closed: false,
            armed: Some(Interest {
                read: false,
                write: false,
            }),
            failed: false,
            peer,
            leaving: refusing.is_some(),
            refusing,
        };
        if let Some(entry) = self.conns.get_mut(slot) {
            *entry = Some(conn);
            self.live += 1;
        }
        Ok(())
    }

    /// A signal arrived: start the graceful shutdown (or end it, the second time).
    fn on_signal(&mut self, now: Instant) -> Result<(), ServeError> {
        let mut byte = [0u8; 16];
        while matches!(self.signals.read(&mut byte), Ok(n) if n > 0) {}
        self.poller
            .modify(&self.signals, Event::readable(SIGNAL))
            .map_err(ServeError::Io)?;
        if self.drain_deadline.is_some() {
            crate::warn!("second signal: stopping without waiting for in-flight calls");
            self.force_stop = true;
            return Ok(());
        }
        super::log_shutdown_started(&self.config);
        if let Some(listener) = self.listener.take() {
            let _ = self.poller.delete(&listener);
        }
        for conn in self.conns.iter_mut().flatten() {
            conn.session.shutdown();
        }
        self.drain_deadline = Some(now + self.config.drain_timeout);
        Ok(())
    }

    /// A connection's socket is ready: read what it has (writing happens in `tick`).
    fn on_ready(&mut self, slot: usize, readable: bool, now: Instant) {
        let stamp = self.stamp(now);
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        conn.armed = None;
        if !readable || conn.read_closed {
            return;
        }
        if conn.refusing.is_some() {
            // Reads drive the TLS handshake; what the client says is dropped.
            for _ in 0..READS_PER_WAKEUP {
                match conn.stream.read(&mut self.buf) {
                    Ok(0) => conn.read_closed = true,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => conn_failed(conn, "read error", &e),
                }
                break;
            }
            return;
        }
        for _ in 0..READS_PER_WAKEUP {
            if !conn.session.wants_input() {
                break;
            }
            match conn.stream.read(&mut self.buf) {
                Ok(0) => {
                    conn.read_closed = true;
                    conn.session.handle_read_closed(stamp);
                    break;
                }
                Ok(n) => conn
                    .session
                    .handle_input(self.buf.get(..n).unwrap_or_default(), stamp),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    conn_failed(conn, "read error", &e);
                    break;
                }
            }
        }
    }

    /// Runs due timers, flushes output, re-arms or closes every connection,
    /// and returns the earliest timer still pending. O(connections) per
    /// wakeup, which is cheap at the connection bound this server runs with.
    fn tick(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let stamp = self.stamp(now);
        let mut to_linger = Vec::new();
        for (slot, entry) in self.conns.iter_mut().enumerate() {
            let Some(conn) = entry else { continue };
            let refusing = conn.refusing;
            if refusing.is_none() && conn.session.poll_timeout().is_some_and(|t| t <= stamp) {
                conn.session.handle_timeout(stamp);
            }
            flush(conn);
            let flushed = conn.written >= conn.out.len();
            let want = Interest {
                read: !conn.read_closed && (refusing.is_some() || conn.session.wants_input()),
                write: !flushed || conn.stream.wants_write(),
            };
            let done = conn.failed
                || match refusing {
                    // Refused over TLS: done once REFUSAL is through rustls
                    // and on the wire, the client left, or time is up.
                    Some(until) => {
                        (flushed && !conn.stream.wants_write() && !conn.stream.is_handshaking())
                            || conn.read_closed
                            || now >= until
                    }
                    None => conn.session.is_closed() && flushed,
                };
            if !done && conn.armed != Some(want) {
                let key = slot + FIRST_CONN;
                let event = match (want.read, want.write) {
                    (true, true) => Event::all(key),
                    (true, false) => Event::readable(key),
                    (false, true) => Event::writable(key),
                    (false, false) => Event::none(key),
                };
                match self.poller.modify(&conn.stream, event) {
                    Ok(()) => conn.armed = Some(want),
                    Err(e) => conn_failed(conn, "cannot re-arm connection", &e),
                }
            }
            if done || conn.failed {
                // One line per connection error, as the tokio flavour logs it.
                if let Some((code, reason)) = conn.session.close_error() {
                    crate::warn!("{}: connection error: {reason} ({code})", conn.peer);
                }
                let _ = self.poller.delete(&conn.stream);
                if !conn.failed && !conn.read_closed {
                    // Our FIN (and TLS close_notify, sent when the transport
                    // drops) go out; the socket lingers on a duplicate.
                    if let Ok(socket) = conn.stream.socket().try_clone() {
                        to_linger.push(socket);
                    }
                }
                *entry = None;
                self.live -= 1;
                continue;
            }
            while let Some(report) = conn.session.poll_report() {
                crate::debug!("{}: {report}", conn.peer);
            }
            let timer = match refusing {
                Some(until) => Some(until),
                None => conn.session.poll_timeout().map(|t| self.epoch + t),
            };
            if let Some(t) = timer {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        for socket in to_linger {
            self.linger(socket, now);
        }
        next
    }
}

/// Writes as much pending output as the socket takes, pulling more from the
/// session whenever the buffer empties.
fn flush(conn: &mut Conn) {
    // Bytes the transport queued itself (TLS records) go first.
    match conn.stream.flush() {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
        Err(e) => {
            crate::debug!("write error: {e}");
            conn.failed = true;
            return;
        }
    }
    loop {
        if conn.written >= conn.out.len() {
            conn.out.clear();
            conn.written = 0;
            if conn.refusing.is_some() {
                // A refused connection gets REFUSAL and nothing else.
                return;
            }
            conn.session.poll_transmit(&mut conn.out);
            if conn.out.is_empty() {
                if conn.out.capacity() > KEEP_OUT_CAPACITY {
                    conn.out = Vec::new();
                }
                return;
            }
        }
        match conn
            .stream
            .write(conn.out.get(conn.written..).unwrap_or_default())
        {
            Ok(0) => {
                conn.failed = true;
                return;
            }
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return conn_failed(conn, "write error", &e),
        }
    }
}

/// A socket error ends the connection (closed at the end of this `tick`).
fn conn_failed(conn: &mut Conn, what: &str, e: &io::Error) {
    crate::debug!("{what}: {e}");
    conn.failed = true;
}

/// Reads and drops what a (non-blocking) lingering connection sent, at most
/// `allowance` bytes more; true once the client closed, the socket failed or
/// the allowance is used up (then dropping the socket resets it).
fn drain_to_eof(mut stream: &TcpStream, allowance: &mut usize) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(n) if n >= *allowance => return true,
            Ok(n) => *allowance -= n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return e.kind() != io::ErrorKind::WouldBlock,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The driver over real loopback sockets, with the shutdown signal
    //! delivered through the same socket pair the signal handler writes to.

    use std::net::SocketAddr;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use super::*;
    use crate::grpc::testwire::*;
    use crate::h2::hpack;

    /// A server on a thread: its address, the shutdown trigger, its result.
    struct Running {
        addr: SocketAddr,
        trigger: UnixStream,
        done: mpsc::Receiver<Result<(), ServeError>>,
    }

    fn start(config: Config) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (signals, trigger) = UnixStream::pair().unwrap();
        let (tx, done) = mpsc::channel();
        thread::spawn(move || {
            let router = services::router(config.max_message_size);
            let _ = tx.send(serve(listener, signals, config, router));
        });
        Running {
            addr,
            trigger,
            done,
        }
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// Reads frames until one matching `stop` arrives (or EOF); returns
    /// every frame as (type, flags, stream, payload).
    fn read_until(
        s: &mut TcpStream,
        stop: impl Fn(u8, u8, u32) -> bool,
    ) -> Vec<(u8, u8, u32, Vec<u8>)> {
        let mut buf = Vec::new();
        let mut frames = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while buf.len() >= 9 {
                let len =
                    usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
                if buf.len() < 9 + len {
                    break;
                }
                let id = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7FFF_FFFF;
                let f: Vec<u8> = buf.drain(..9 + len).collect();
                let (ty, flags) = (f[3], f[4]);
                frames.push((ty, flags, id, f[9..].to_vec()));
                if ty == SETTINGS && flags & ACK == 0 {
                    s.write_all(&frame(SETTINGS, ACK, 0, &[])).unwrap();
                }
                if ty == PING && flags & ACK == 0 {
                    // (A closing server may not read it: ignore a failed write.)
                    let _ = s.write_all(&frame(PING, ACK, 0, &f[9..]));
                }
                if stop(ty, flags, id) {
                    return frames;
                }
            }
            match s.read(&mut chunk) {
                Ok(0) => return frames,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// The request headers of one Echo call.
    const ECHO_FIELDS: [(&str, &str); 5] = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/echo.Echo/Reply"),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
    ];

    fn echo_request(s: &mut TcpStream, id: u32, text: &str) {
        let body = crate::grpc::message::encode(&crate::proto::echo::EchoRequest {
            message: text.into(),
        });
        let mut out = frame(HEADERS, END_HEADERS, id, &block(&ECHO_FIELDS));
        out.extend(frame(DATA, END_STREAM, id, &body));
        s.write_all(&out).unwrap();
    }

    #[test]
    fn echo_over_loopback_then_shutdown() {
        let server = start(Config::default());
        let mut s = connect(server.addr);
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        s.write_all(&hello).unwrap();
        echo_request(&mut s, 1, "over TCP");
        let frames = read_until(&mut s, |ty, flags, id| {
            id == 1 && ty == HEADERS && flags & END_STREAM != 0
        });
        let data: Vec<u8> = frames
            .iter()
            .filter(|f| f.0 == DATA && f.2 == 1)
            .flat_map(|f| f.3.clone())
            .collect();
        let reply = <crate::proto::echo::EchoReply as prost::Message>::decode(&data[5..]).unwrap();
        assert_eq!(reply.message, "You said: over TCP");
        let mut dec = hpack::Decoder::new(4096, 1 << 20);
        let mut status = None;
        for f in frames.iter().filter(|f| f.0 == HEADERS) {
            dec.decode(&f.3, &mut |n, v| {
                if n == b"grpc-status" {
                    status = Some(v.to_vec());
                }
            })
            .unwrap();
        }
        assert_eq!(status.as_deref(), Some(&b"0"[..]));

        // "Signal": the idle connection gets GOAWAY (two, §6.8) and is
        // closed, the listener stops accepting, and serve returns.
        (&server.trigger).write_all(&[1]).unwrap();
        let frames = read_until(&mut s, |_, _, _| false);
        let goaways: Vec<u32> = frames
            .iter()
            .filter(|f| f.0 == GOAWAY)
            .map(|f| u32::from_be_bytes([f.3[0], f.3[1], f.3[2], f.3[3]]))
            .collect();
        assert_eq!(goaways, [0x7fff_ffff, 1]);
        let result = server.done.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(result.is_ok());
        assert!(TcpStream::connect(server.addr).is_err(), "listener closed");
    }

    #[test]
    fn drain_timeout_ends_a_stuck_call() {
        let server = start(Config {
            drain_timeout: Duration::from_millis(200),
            ..Config::default()
        });
        let mut s = connect(server.addr);
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        // A call whose request never ends.
        hello.extend(frame(HEADERS, END_HEADERS, 1, &block(&ECHO_FIELDS)));
        s.write_all(&hello).unwrap();
        read_until(&mut s, |ty, flags, _| ty == SETTINGS && flags & ACK != 0);
        (&server.trigger).write_all(&[1]).unwrap();
        let result = server.done.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(result.is_ok());
    }

    #[test]
    fn a_client_that_does_not_read_is_not_read_either() {
        // Few connections and a large budget: 256 KiB windows, so each
        // 200 KiB request fits and this client (which never waits for a
        // WINDOW_UPDATE) stays within flow control.
        let server = start(Config {
            max_connections: 4,
            memory_budget: 256 << 20,
            ..Config::default()
        });
        let mut stuck = connect(server.addr);
        // Huge windows, so only the socket (not flow control) holds replies back.
        let mut out = PREFACE.to_vec();
        out.extend(frame(SETTINGS, 0, 0, &[0, 4, 0x7F, 0xFF, 0xFF, 0xFF]));
        out.extend(frame(8, 0, 0, &(0x7FFF_FFFFu32 - 65_535).to_be_bytes()));
        let body = crate::grpc::message::encode(&crate::proto::echo::EchoRequest {
            message: "z".repeat(200 << 10),
        });
        for id in (1..500).step_by(2) {
            out.extend(frame(HEADERS, END_HEADERS, id, &block(&ECHO_FIELDS)));
            let chunks: Vec<&[u8]> = body.chunks(16_384).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let flags = if i + 1 == chunks.len() { END_STREAM } else { 0 };
                out.extend(frame(DATA, flags, id, chunk));
            }
        }
        // 250 calls with 200 KiB replies, never reading: the server must stop
        // reading long before taking all 50 MB.
        stuck.set_nonblocking(true).unwrap();
        let mut sent = 0;
        let until = Instant::now() + Duration::from_secs(3);
        while sent < out.len() && Instant::now() < until {
            match stuck.write(&out[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
        assert!(
            sent < out.len() / 2,
            "server kept reading: {sent} of {} bytes taken",
            out.len()
        );
        // Meanwhile another client is served at once.
        let mut other = connect(server.addr);
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        other.write_all(&hello).unwrap();
        echo_request(&mut other, 1, "not stuck");
        let frames = read_until(&mut other, |ty, flags, id| {
            id == 1 && ty == HEADERS && flags & END_STREAM != 0
        });
        assert!(frames.iter().any(|f| f.0 == DATA && f.2 == 1));
        drop(stuck);
        (&server.trigger).write_all(&[1]).unwrap();
        read_until(&mut other, |_, _, _| false);
        assert!(server
            .done
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .is_ok());
    }

    #[test]
    fn connections_over_the_limit_are_refused_with_goaway() {
        let server = start(Config {
            max_connections: 1,
            ..Config::default()
        });
        let mut first = connect(server.addr);
        first.write_all(PREFACE).unwrap();
        first.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
        // An open call: the only slot is busy, so it does not give way.
        first
            .write_all(&frame(HEADERS, END_HEADERS, 1, &block(&ECHO_FIELDS)))
            .unwrap();
        first.write_all(&frame(PING, 0, 0, &[0; 8])).unwrap();
        read_until(&mut first, |ty, flags, _| ty == PING && flags & ACK != 0);
        let mut second = connect(server.addr);
        second.write_all(PREFACE).unwrap();
        let mut rest = Vec::new();
        // SETTINGS + GOAWAY(REFUSED_STREAM), then our side is closed (EOF,
        // not a reset, although the preface was never read).
        second.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, REFUSAL);
        // The first one still works.
        let body = crate::grpc::message::encode(&crate::proto::echo::EchoRequest {
            message: "still here".into(),
        });
        first.write_all(&frame(DATA, END_STREAM, 1, &body)).unwrap();
        let frames = read_until(&mut first, |ty, flags, id| {
            id == 1 && ty == HEADERS && flags & END_STREAM != 0
        });
        assert!(frames.iter().any(|f| f.0 == DATA && f.2 == 1));
        (&server.trigger).write_all(&[1]).unwrap();
        read_until(&mut first, |_, _, _| false);
        assert!(server
            .done
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .is_ok());
    }
}
