//! One HTTP/2 connection: hyper drives the protocol; this task owns the
//! connection's timers (handshake, idle, shutdown grace) and its socket
//! wrapper, which counts handshake bytes and holds the connection-cap slot.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::call::CallService;
use super::{Registration, Shared};

/// An admitted connection's place in the fair connection slots.
pub(super) struct Admitted {
    /// Its registry entry (dropped with the socket: the slot is free again).
    pub(super) registration: Registration,
    /// Its calls and idle time, also read by the slot decision.
    pub(super) state: Arc<ConnState>,
    /// Notified when a new connection takes this one's slot.
    pub(super) evict: Arc<Notify>,
}

/// Bytes a client must send before its connection counts as an HTTP/2 one:
/// the 24-byte preface plus the 9-byte header of its first SETTINGS frame.
const HANDSHAKE_BYTES: u64 = 24 + 9;

/// A timer that is never meant to fire (about a year).
const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// Serves one accepted connection: the TLS handshake first when TLS is
/// configured (within the handshake timeout; a failure is one warn line),
/// then HTTP/2 until the connection closes.
pub(super) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Admitted,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    // One budget for the TLS handshake and the HTTP/2 preface together.
    let deadline = Instant::now() + shared.config.handshake_timeout;
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &shared.tls {
        match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => return serve_http2(tls, peer, slot, shared, stop, deadline).await,
            Ok(Err(e)) => crate::warn!("{peer}: TLS handshake failed: {e}"),
            Err(_) => crate::warn!(
                "{peer}: no TLS handshake within {}, closing",
                crate::config::show_duration(shared.config.handshake_timeout)
            ),
        }
        return;
    }
    serve_http2(stream, peer, slot, shared, stop, deadline).await
}

/// Serves HTTP/2 on `stream` (plain TCP or TLS) until it closes, the
/// handshake (`deadline`) or idle timer fires, or shutdown asks it to finish
/// its open streams.
async fn serve_http2<S>(
    stream: S,
    peer: SocketAddr,
    slot: Admitted,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Admitted {
        registration,
        state,
        evict,
    } = slot;
    let io = TokioIo::new(CountingIo {
        stream: Some(stream),
        lingering: Arc::clone(&shared.lingering),
        state: Arc::clone(&state),
        _slot: registration,
    });
    let service = CallService {
        shared: Arc::clone(&shared),
        conn: Arc::clone(&state),
        stop: stop.clone(),
    };
    let conn = shared.http2.serve_connection(io, service);
    tokio::pin!(conn);

    let config = &shared.config;
    let handshake = tokio::time::sleep_until(deadline);
    tokio::pin!(handshake);
    let mut awaiting_handshake = true;
    // With idle-timeout off this timer is never polled.
    let idle = tokio::time::sleep(config.idle_timeout.unwrap_or(NEVER));
    tokio::pin!(idle);
    // Once GOAWAY is sent, a peer that keeps its streams open (or never acks
    // hyper's shutdown PING) is cut off after drain-timeout, so it cannot
    // hold a connection slot forever.
    let grace = tokio::time::sleep(NEVER);
    tokio::pin!(grace);
    let mut closing = false;

    loop {
        tokio::select! {
            result = &mut conn => {
                match result {
                    Ok(()) => crate::debug!("{peer}: connection closed"),
                    Err(e) => log_connection_error(peer, &e),
                }
                return;
            }
            _ = &mut handshake, if awaiting_handshake => {
                if !state.handshake_done.load(Ordering::Relaxed) {
                    crate::warn!(
                        "{peer}: no HTTP/2 preface within {}, closing",
                        crate::config::show_duration(config.handshake_timeout)
                    );
                    return;
                }
                awaiting_handshake = false;
            }
            _ = &mut idle, if config.idle_timeout.is_some() && !closing => {
                let limit = config.idle_timeout.unwrap_or(Duration::MAX);
                match state.idle_for() {
                    Some(idle_for) if idle_for >= limit => {
                        crate::debug!("{peer}: idle for {}, closing", crate::config::show_duration(limit));
                        conn.as_mut().graceful_shutdown();
                        grace.as_mut().reset(Instant::now() + config.drain_timeout);
                        closing = true;
                    }
                    // Busy, or idle for less: look again when it could first expire.
                    Some(idle_for) => idle.as_mut().reset(Instant::now() + (limit - idle_for)),
                    None => idle.as_mut().reset(Instant::now() + limit),
                }
            }
            () = evict.notified(), if !closing => {
                if !state.handshake_done.load(Ordering::Relaxed) {
                    // Not an HTTP/2 client yet: nothing to say GOAWAY to.
                    crate::debug!("{peer}: still in the handshake, giving its slot to a new connection");
                    return;
                }
                crate::debug!("{peer}: idle, giving its slot to a new connection (GOAWAY)");
                conn.as_mut().graceful_shutdown();
                grace.as_mut().reset(Instant::now() + config.drain_timeout);
                closing = true;
            }
            changed = stop.changed(), if !closing => {
                // A dropped sender also means "stop".
                let _ = changed;
                conn.as_mut().graceful_shutdown();
                grace.as_mut().reset(Instant::now() + config.drain_timeout);
                closing = true;
            }
            _ = &mut grace, if closing => {
                crate::debug!("{peer}: still open {} after GOAWAY, dropping it",
                    crate::config::show_duration(config.drain_timeout));
                return;
            }
        }
    }
}

/// Logs a connection that ended with an error: at warn when the peer broke
/// the protocol, at debug for ordinary disconnects.
fn log_connection_error(peer: SocketAddr, e: &hyper::Error) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.downcast_ref::<io::Error>().is_some() {
            crate::debug!("{peer}: connection lost: {e}");
            return;
        }
        source = err.source();
    }
    crate::warn!("{peer}: connection error: {e}");
}

/// Per-connection facts shared between the connection task, its socket
/// wrapper and its calls.
pub(super) struct ConnState {
    /// Set once the client sent at least [`HANDSHAKE_BYTES`].
    handshake_done: AtomicBool,
    /// Bytes read so far, until the handshake is done.
    read: AtomicU64,
    /// Calls open on this connection.
    pub(super) active: AtomicUsize,
    /// When `active` last dropped to zero, in ms since `born`.
    pub(super) idle_since_ms: AtomicU64,
    /// When the connection was accepted.
    born: Instant,
}

impl ConnState {
    pub(super) fn new() -> ConnState {
        ConnState {
            handshake_done: AtomicBool::new(false),
            read: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    pub(super) fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Since when the connection has had no open call (since it was accepted
    /// if it never had one), or `None` while busy: for the slot decision.
    pub(super) fn idle_since(&self) -> Option<std::time::Instant> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.idle_since_ms.load(Ordering::Acquire);
        Some(self.born.into_std() + Duration::from_millis(since))
    }

    /// How long the connection has had no open call, or `None` while busy.
    fn idle_for(&self) -> Option<Duration> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.idle_since_ms.load(Ordering::Acquire);
        Some(Duration::from_millis(
            self.elapsed_ms().saturating_sub(since),
        ))
    }
}

/// The socket (plain or TLS) as hyper sees it: counts handshake bytes and
/// holds the connection's [`Registration`], so the slot is released when
/// hyper drops the socket. Dropped, it lingers (see [`super::goodbye`]) if a
/// lingering place is free, so the client gets to read our GOAWAY.
struct CountingIo<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> {
    /// The socket; `None` only once dropped.
    stream: Option<S>,
    state: Arc<ConnState>,
    /// Lingering connections, bounded by `MAX_LINGERING_REFUSALS`.
    lingering: Arc<AtomicUsize>,
    _slot: Registration,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> CountingIo<S> {
    /// The socket, or `NotConnected` (never: it is only taken on drop).
    fn stream(&mut self) -> io::Result<Pin<&mut S>> {
        match self.stream.as_mut() {
            Some(stream) => Ok(Pin::new(stream)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Drop for CountingIo<S> {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        let Some(slot) = super::Slot::take(&self.lingering, super::MAX_LINGERING_REFUSALS) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(super::goodbye(stream, &[], Some(slot)));
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for CountingIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = match self.stream() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if !self.state.handshake_done.load(Ordering::Relaxed) {
            let got = buf.filled().len().saturating_sub(before) as u64;
            let total = self.state.read.fetch_add(got, Ordering::Relaxed) + got;
            if total >= HANDSHAKE_BYTES {
                self.state.handshake_done.store(true, Ordering::Relaxed);
            }
        }
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite for CountingIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
