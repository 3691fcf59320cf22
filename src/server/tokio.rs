//! echo-server on tonic's generated services, hyper's HTTP/2 server and a
//! single-threaded tokio runtime.
//!
//! A request's path through this file:
//!
//! 1. [`run`] binds, then the accept loop ([`accept_loop`]) either refuses the
//!    socket (connection cap, [`refuse`]) or spawns [`serve_connection`].
//! 2. [`serve_connection`] drives one hyper HTTP/2 connection and owns its
//!    timers: handshake timeout, idle timeout and graceful shutdown.
//! 3. Every request enters [`CallService::call`]: content-type check,
//!    `grpc-timeout` deadline, in-flight accounting, then [`Routes`] picks the
//!    tonic service by the service name in `:path`.
//! 4. The Echo reply itself is made by [`crate::service::reply`].
//!
//! We drive hyper ourselves instead of using `tonic::transport::Server`: it
//! lets us own the accept loop (connection cap), the per-connection timers,
//! the drain deadline and the `grpc-timeout` status, and it leaves axum, HTTP/1
//! and the tower middleware out of the binary.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderMap, HeaderValue, Request, Response};
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_reflection::pb::v1::server_reflection_server::ServerReflectionServer;
use tonic_reflection::pb::v1alpha::server_reflection_server::ServerReflectionServer as AlphaReflectionServer;

mod reflection;

use super::refuse::REFUSAL;
use super::ServeError;
use crate::config::Config;
use crate::proto::echo::echo_server::{Echo, EchoServer};
use crate::proto::echo::{EchoReply, EchoRequest};

/// Bytes a client must send before its connection counts as an HTTP/2 one:
/// the 24-byte preface plus the 9-byte header of its first SETTINGS frame.
const HANDSHAKE_BYTES: u64 = 24 + 9;

/// How long a refused connection is kept open so the client can read the
/// GOAWAY before the socket closes (closing with unread input would send RST).
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// Refused connections allowed to linger at once; beyond this they are
/// closed right after the write, so a connection flood cannot pile them up.
const MAX_LINGERING_REFUSALS: usize = 64;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A timer that is never meant to fire (about a year).
const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// Slack on top of `max_message_size` for the reply: "You said: " plus at
/// most one more length-prefix byte, rounded up.
const REPLY_SLACK: usize = 16;

/// Runs the server until SIGINT or SIGTERM, then drains in-flight calls for
/// at most `config.drain_timeout` and returns.
pub fn run(config: Config) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Io)?;
    runtime.block_on(async {
        // Signal handlers first: a SIGTERM right after the startup line must
        // be a graceful shutdown, never the default "terminate".
        let signal = shutdown_signal().map_err(ServeError::Io)?;
        let listener = bind(&config).await?;
        serve(listener, config, signal).await
    })
}

/// Binds the listening socket.
async fn bind(config: &Config) -> Result<TcpListener, ServeError> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Bind(config.listen, e))
}

/// Serves on `listener` until `shutdown` resolves, then drains.
async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let bound = listener.local_addr().map_err(ServeError::Io)?;

    let (health, routes) = routes(&config).await?;
    let shared = Arc::new(Shared {
        routes,
        http2: http2_builder(&config),
        calls: Arc::new(AtomicUsize::new(0)),
        open: Arc::new(AtomicUsize::new(0)),
        lingering: Arc::new(AtomicUsize::new(0)),
        config,
    });
    super::log_startup(bound, &shared.config);

    let (stop_tx, stop_rx) = watch::channel(false);
    accept_loop(listener, &shared, stop_rx, shutdown).await;

    // Shutdown: health first, so probes see NOT_SERVING while we drain.
    super::log_shutdown_started(&shared.config);
    for service in ["", EchoServer::<EchoService>::NAME] {
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
    // Every connection task holds a receiver: it sends GOAWAY and finishes
    // its open streams, and `closed` resolves when the last one has ended.
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(shared.config.drain_timeout, stop_tx.closed()).await;
    let abandoned = match drained {
        Ok(()) => 0,
        Err(_) => shared.calls.load(Ordering::Relaxed),
    };
    super::log_shutdown_done(abandoned);
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM.
#[cfg(unix)]
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Resolves on the first Ctrl-C (non-Unix systems have no SIGTERM).
#[cfg(not(unix))]
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// State shared by the accept loop and every connection.
struct Shared {
    /// The services, by name.
    routes: Routes,
    /// hyper's HTTP/2 settings, every limit from [`Config`] applied.
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    /// Calls in flight on all connections, for the drain report.
    calls: Arc<AtomicUsize>,
    /// Open (accepted, not refused) connections, for the connection cap.
    open: Arc<AtomicUsize>,
    /// Refused connections still lingering, see [`MAX_LINGERING_REFUSALS`].
    lingering: Arc<AtomicUsize>,
    /// The configuration the server runs with.
    config: Config,
}

/// hyper's HTTP/2 server settings with every relevant [`Config`] knob set
/// explicitly, never left to a library default.
fn http2_builder(config: &Config) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.max_concurrent_streams)
        .max_header_list_size(config.max_header_list_size)
        .keep_alive_interval(config.keepalive_interval)
        .keep_alive_timeout(config.keepalive_timeout)
        // hyper's default leaves this unbounded: a peer could make us reset
        // streams forever (the "MadeYouReset" family). Past the limit hyper
        // closes the connection with GOAWAY(ENHANCE_YOUR_CALM).
        .max_local_error_reset_streams(config.max_local_resets);
    builder
}

/// Accepts connections until the shutdown signal, then returns (dropping
/// the listener, so the port stops accepting at once).
async fn accept_loop(
    listener: TcpListener,
    shared: &Arc<Shared>,
    stop: watch::Receiver<bool>,
    signal: impl Future<Output = ()>,
) {
    tokio::pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut signal => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    crate::warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(shared.config.tcp_nodelay) {
            crate::debug!("{peer}: cannot set TCP_NODELAY: {e}");
        }
        match Slot::take(&shared.open, shared.config.max_connections) {
            Some(slot) => {
                crate::debug!("{peer}: connection accepted");
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    slot,
                    Arc::clone(shared),
                    stop.clone(),
                ));
            }
            None => {
                crate::warn!(
                    "{peer}: connection refused: {} connections open (max-connections)",
                    shared.config.max_connections
                );
                let linger = Slot::take(&shared.lingering, MAX_LINGERING_REFUSALS);
                tokio::spawn(refuse(stream, linger));
            }
        }
    }
}

/// A counted place in a bounded set (open connections, lingering refusals);
/// dropping it gives the place back.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// Takes a place if fewer than `max` are taken.
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(count)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Writes [`REFUSAL`] (SETTINGS + GOAWAY), closes our side, and, if a
/// lingering slot was free, waits briefly for the client to close its side
/// so it gets to read the GOAWAY.
async fn refuse(mut stream: TcpStream, linger: Option<Slot>) {
    let goodbye = async {
        let mut sent = 0;
        while let Some(rest) = REFUSAL.get(sent..).filter(|rest| !rest.is_empty()) {
            stream.writable().await?;
            match stream.try_write(rest) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        poll_fn(|cx| Pin::new(&mut stream).poll_shutdown(cx)).await?;
        if linger.is_some() {
            let mut sink = [0u8; 256];
            loop {
                stream.readable().await?;
                match stream.try_read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok::<(), io::Error>(())
    };
    // A client that neither reads nor closes gets cut off; nothing to report.
    let _ = tokio::time::timeout(REFUSE_LINGER, goodbye).await;
}

/// Serves one HTTP/2 connection until it closes, the handshake or idle timer
/// fires, or shutdown asks it to finish its open streams.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let state = Arc::new(ConnState::new());
    let io = TokioIo::new(CountingIo {
        stream,
        state: Arc::clone(&state),
        _slot: slot,
    });
    let service = CallService {
        shared: Arc::clone(&shared),
        conn: Arc::clone(&state),
    };
    let conn = shared.http2.serve_connection(io, service);
    tokio::pin!(conn);

    let config = &shared.config;
    let handshake = tokio::time::sleep(config.handshake_timeout);
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
struct ConnState {
    /// Set once the client sent at least [`HANDSHAKE_BYTES`].
    handshake_done: AtomicBool,
    /// Bytes read so far, until the handshake is done.
    read: AtomicU64,
    /// Calls open on this connection.
    active: AtomicUsize,
    /// When `active` last dropped to zero, in ms since `born`.
    idle_since_ms: AtomicU64,
    /// When the connection was accepted.
    born: Instant,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            handshake_done: AtomicBool::new(false),
            read: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
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

/// The socket as hyper sees it: counts handshake bytes and holds the
/// connection's [`Slot`], so the cap is released when hyper drops the socket.
struct CountingIo {
    stream: TcpStream,
    state: Arc<ConnState>,
    _slot: Slot,
}

impl AsyncRead for CountingIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
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

impl AsyncWrite for CountingIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The Echo service: every reply comes from [`crate::service::reply`].
struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn reply(
        &self,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoReply>, tonic::Status> {
        Ok(tonic::Response::new(crate::service::reply(
            request.get_ref(),
        )))
    }
}

/// A request body that checks each gRPC message's length prefix against
/// `max-message-size` as the bytes arrive, and fails the call with
/// RESOURCE_EXHAUSTED before buffering an oversized message. (tonic's own
/// check, kept as a second line, would answer OUT_OF_RANGE.)
struct LimitedBody {
    inner: Incoming,
    /// Largest message allowed, in bytes after the 5-byte prefix.
    limit: usize,
    /// Where the message framing is at in the bytes seen so far.
    framing: Framing,
    /// Set after the limit was exceeded: the body yields nothing more.
    failed: bool,
}

impl LimitedBody {
    fn new(inner: Incoming, limit: usize) -> LimitedBody {
        LimitedBody {
            inner,
            limit,
            framing: Framing::default(),
            failed: false,
        }
    }
}

/// Tracks gRPC message framing (1 flag byte, 4-byte big-endian length,
/// payload) across arbitrarily split DATA chunks.
#[derive(Default)]
struct Framing {
    /// The current message's prefix, while it is being read.
    prefix: [u8; 5],
    /// Prefix bytes read so far (0..=4 between chunks).
    prefix_len: usize,
    /// Payload bytes of the current message still to come.
    remaining: usize,
}

impl Framing {
    /// Follows the framing through one chunk; returns the length of the
    /// first message announced as longer than `limit`, if any.
    fn check(&mut self, mut chunk: &[u8], limit: usize) -> Option<usize> {
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(chunk.len());
                self.remaining -= take;
                chunk = chunk.get(take..).unwrap_or_default();
                continue;
            }
            let take = (5 - self.prefix_len).min(chunk.len());
            let (head, rest) = chunk.split_at(take);
            if let Some(dst) = self.prefix.get_mut(self.prefix_len..self.prefix_len + take) {
                dst.copy_from_slice(head);
            }
            self.prefix_len += take;
            chunk = rest;
            if self.prefix_len == 5 {
                self.prefix_len = 0;
                let [_flag, a, b, c, d] = self.prefix;
                let len = u32::from_be_bytes([a, b, c, d]) as usize;
                if len > limit {
                    return Some(len);
                }
                self.remaining = len;
            }
        }
        None
    }
}

impl http_body::Body for LimitedBody {
    type Data = tonic::codegen::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(too_large) = frame
            .data_ref()
            .and_then(|data| this.framing.check(data, this.limit))
        {
            this.failed = true;
            let status = tonic::Status::resource_exhausted(format!(
                "message of {too_large} bytes is over the limit of {} bytes",
                this.limit
            ));
            return Poll::Ready(Some(Err(status.into())));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A routed call: the tonic service's response future, boxed.
type RouteFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// One service's entry point, type-erased so the table can hold all of them.
type Handler = Box<dyn Fn(Request<LimitedBody>) -> RouteFuture + Send + Sync>;

/// The served services by fully-qualified name (`echo.Echo`, ...).
struct Routes(Vec<(&'static str, Handler)>);

impl Routes {
    /// Adds a tonic service under its [`NamedService::NAME`].
    fn add<S>(&mut self, service: S)
    where
        S: Service<Request<LimitedBody>, Response = Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let handler = move |request: Request<LimitedBody>| -> RouteFuture {
            let mut service = service.clone();
            Box::pin(async move {
                let Ok(()) = poll_fn(|cx| service.poll_ready(cx)).await;
                let Ok(response) = service.call(request).await;
                response
            })
        };
        self.0.push((S::NAME, Box::new(handler)));
    }

    /// Calls the service named in `:path` (`/package.Service/Method`), or
    /// answers UNIMPLEMENTED.
    fn call(&self, request: Request<LimitedBody>) -> RouteFuture {
        let name = request
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .map(|(service, _method)| service);
        match self.0.iter().find(|(n, _)| Some(*n) == name) {
            Some((_, handler)) => handler(request),
            None => {
                let status = tonic::Status::unimplemented("unknown service");
                Box::pin(async move { status.into_http() })
            }
        }
    }
}

/// Builds every served service with the configured message limits; returns
/// the health reporter so shutdown can flip it to NOT_SERVING.
async fn routes(
    config: &Config,
) -> Result<(tonic_health::server::HealthReporter, Routes), ServeError> {
    let decode = config.max_message_size;
    let encode = decode.saturating_add(REPLY_SLACK);
    let mut routes = Routes(Vec::new());

    routes.add(
        EchoServer::new(EchoService)
            .max_decoding_message_size(decode)
            .max_encoding_message_size(encode),
    );

    let (reporter, health) = tonic_health::server::health_reporter();
    // `tonic-health` starts "" (the whole server) as SERVING; echo.Echo is ours to set.
    reporter
        .set_service_status(EchoServer::<EchoService>::NAME, ServingStatus::Serving)
        .await;
    routes.add(
        health
            .max_decoding_message_size(decode)
            .max_encoding_message_size(encode),
    );

    let index = reflection::Index::new(&[
        crate::proto::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ])
    .map_err(|e| ServeError::Io(io::Error::other(format!("reflection descriptors: {e}"))))?;
    let index = Arc::new(index);
    routes.add(
        ServerReflectionServer::new(reflection::ReflectionV1(Arc::clone(&index)))
            .max_decoding_message_size(decode),
    );
    routes.add(
        AlphaReflectionServer::new(reflection::ReflectionV1Alpha(index))
            .max_decoding_message_size(decode),
    );
    Ok((reporter, routes))
}

/// The hyper service of one connection: checks, deadline and accounting
/// around [`Routes::call`].
struct CallService {
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
}

impl hyper::service::Service<Request<Incoming>> for CallService {
    type Response = Response<CallBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<CallBody>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard = CallGuard::new(&self.shared.calls, &self.conn);
        if !is_grpc(request.headers()) {
            return Box::pin(async move {
                Ok(unsupported_media_type().map(|b| CallBody::new(b, guard, None)))
            });
        }
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| parse_grpc_timeout(v.as_bytes()))
            .map(|timeout| Instant::now() + timeout);
        let limit = self.shared.config.max_message_size;
        let call = self
            .shared
            .routes
            .call(request.map(|body| LimitedBody::new(body, limit)));
        Box::pin(async move {
            let response = match deadline {
                None => call.await,
                Some(at) => {
                    tokio::select! {
                        response = call => response,
                        _ = tokio::time::sleep_until(at) => deadline_exceeded(),
                    }
                }
            };
            // Answering after the deadline would tell the client a lie.
            let response = match deadline {
                Some(at) if Instant::now() >= at => deadline_exceeded(),
                _ => response,
            };
            Ok(response.map(|body| CallBody::new(body, guard, deadline)))
        })
    }
}

/// True for `application/grpc` and its `+proto` / `;params` variants.
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.as_bytes().strip_prefix(b"application/grpc"))
        .is_some_and(|rest| matches!(rest.first(), None | Some(b'+' | b';')))
}

/// HTTP 415, as the gRPC spec asks for a request that is not gRPC.
fn unsupported_media_type() -> Response<Body> {
    let mut response =
        tonic::Status::internal("content-type must be application/grpc").into_http::<Body>();
    *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
    response
}

fn deadline_exceeded() -> Response<Body> {
    tonic::Status::deadline_exceeded("deadline exceeded").into_http()
}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits and a unit (`H`, `M`,
/// `S`, `m`, `u`, `n`). Malformed values are ignored, as tonic does.
fn parse_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Counts a call in flight, globally (drain report) and on its connection
/// (idle timeout), until the response body is finished or dropped.
struct CallGuard {
    calls: Arc<AtomicUsize>,
    conn: Arc<ConnState>,
}

impl CallGuard {
    fn new(calls: &Arc<AtomicUsize>, conn: &Arc<ConnState>) -> CallGuard {
        calls.fetch_add(1, Ordering::AcqRel);
        conn.active.fetch_add(1, Ordering::AcqRel);
        CallGuard {
            calls: Arc::clone(calls),
            conn: Arc::clone(conn),
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.calls.fetch_sub(1, Ordering::AcqRel);
        if self.conn.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            let now = self.conn.elapsed_ms();
            self.conn.idle_since_ms.store(now, Ordering::Release);
        }
    }
}

/// A response body that keeps its call counted until it ends, and ends a
/// stream that outlives its `grpc-timeout` with DEADLINE_EXCEEDED trailers.
struct CallBody {
    inner: Body,
    guard: Option<CallGuard>,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl CallBody {
    fn new(inner: Body, guard: CallGuard, deadline: Option<Instant>) -> CallBody {
        CallBody {
            inner,
            guard: Some(guard),
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
        }
    }
}

impl http_body::Body for CallBody {
    type Data = tonic::codegen::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.guard.is_none() {
            return Poll::Ready(None);
        }
        let expired = match this.deadline.as_mut() {
            Some(sleep) => sleep.as_mut().poll(cx).is_ready(),
            None => false,
        };
        if expired {
            this.guard = None;
            let mut trailers = HeaderMap::new();
            trailers.insert(
                "grpc-status",
                HeaderValue::from(tonic::Code::DeadlineExceeded as i32),
            );
            trailers.insert(
                "grpc-message",
                HeaderValue::from_static("deadline exceeded"),
            );
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.guard = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.guard.is_none() || self.inner.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout(b"3S"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_grpc_timeout(b"250m"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_grpc_timeout(b"7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout(b"1n"), Some(Duration::from_nanos(1)));
        assert_eq!(
            parse_grpc_timeout(b"99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
    }

    #[test]
    fn malformed_grpc_timeouts_are_ignored() {
        for bad in [
            &b""[..],
            b"S",
            b"123456789S",
            b"10x",
            b"-1S",
            b"1.5S",
            b" 1S",
        ] {
            assert_eq!(
                parse_grpc_timeout(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn content_types() {
        let check = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(v));
            is_grpc(&h)
        };
        assert!(check("application/grpc"));
        assert!(check("application/grpc+proto"));
        assert!(check("application/grpc;charset=utf-8"));
        assert!(!check("application/grpcx"));
        assert!(!check("application/json"));
        assert!(!is_grpc(&HeaderMap::new()));
    }

    fn message(len: u32) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&len.to_be_bytes());
        m.resize(5 + len as usize, b'x');
        m
    }

    #[test]
    fn framing_allows_messages_up_to_the_limit() {
        let mut framing = Framing::default();
        let mut stream = message(10);
        stream.extend(message(0));
        stream.extend(message(10));
        assert_eq!(framing.check(&stream, 10), None);
        assert_eq!((framing.prefix_len, framing.remaining), (0, 0));
    }

    #[test]
    fn framing_catches_an_oversized_prefix_split_across_chunks() {
        let mut stream = message(4);
        stream.extend_from_slice(&[0, 0, 0, 0x01, 0x00]); // announces 256 bytes
        for split in 0..stream.len() {
            let mut framing = Framing::default();
            let (a, b) = stream.split_at(split);
            let found = framing.check(a, 255).or_else(|| framing.check(b, 255));
            assert_eq!(found, Some(256), "split at {split}");
        }
        // Byte by byte as well.
        let mut framing = Framing::default();
        let found = stream.chunks(1).find_map(|c| framing.check(c, 255));
        assert_eq!(found, Some(256));
    }

    #[test]
    fn slots_are_bounded_and_given_back() {
        let count = Arc::new(AtomicUsize::new(0));
        let a = Slot::take(&count, 2);
        let b = Slot::take(&count, 2);
        assert!(a.is_some() && b.is_some());
        assert!(Slot::take(&count, 2).is_none());
        drop(a);
        assert!(Slot::take(&count, 2).is_some());
        assert_eq!(count.load(Ordering::Relaxed), 1);
    }
}

/// The driver end to end, in-process: a real server on a loopback port and
/// the crate's tonic client, for what the unit tests above cannot show.
#[cfg(all(test, feature = "client"))]
mod served {
    use super::*;
    use crate::client::{self, ClientError};
    use crate::status::Code;

    /// Runs `test` against a server started with `config` (listening on
    /// 127.0.0.1:0), then shuts the server down and checks it returned Ok.
    fn with_server<F, Fut>(mut config: Config, test: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.drain_timeout = Duration::from_secs(2);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let listener = bind(&config).await.expect("bind");
            let addr = listener.local_addr().expect("addr").to_string();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = serve(listener, config, async {
                let _ = stopped.await;
            });
            let test = async {
                test(addr).await;
                let _ = stop.send(());
            };
            let (served, ()) = tokio::time::timeout(Duration::from_secs(20), async {
                tokio::join!(server, test)
            })
            .await
            .expect("test finished in time");
            served.expect("server returned Ok");
        });
    }

    async fn echo(addr: &str, message: &str) -> Result<String, ClientError> {
        let channel = client::connect(addr, Duration::from_secs(5)).await?;
        client::echo(channel, message, Duration::from_secs(5)).await
    }

    #[test]
    fn echoes_and_reports_health() {
        with_server(Config::default(), |addr| async move {
            assert_eq!(echo(&addr, "hi").await, Ok("You said: hi".into()));
            let channel = client::connect(&addr, Duration::from_secs(5))
                .await
                .expect("connect");
            let status = client::health(channel, "echo.Echo", Duration::from_secs(5)).await;
            assert_eq!(status.map(|s| s.as_str_name()), Ok("SERVING"));
        });
    }

    #[test]
    fn oversized_message_is_resource_exhausted() {
        let config = Config {
            max_message_size: 100,
            ..Config::default()
        };
        with_server(config, |addr| async move {
            // 98 bytes of text is a 100-byte message: allowed; 99 is not.
            let ok = echo(&addr, &"a".repeat(98)).await;
            assert!(ok.is_ok(), "{ok:?}");
            let err = echo(&addr, &"a".repeat(99))
                .await
                .expect_err("over the limit");
            assert_eq!(err.code, Code::ResourceExhausted, "{err}");
        });
    }

    /// A request whose message arrives after its `grpc-timeout` must get
    /// DEADLINE_EXCEEDED from the server when the deadline passes (tonic
    /// alone would say CANCELLED). tonic's client enforces `grpc-timeout`
    /// itself, so this speaks plain HTTP/2 through hyper's client.
    #[test]
    fn late_request_is_deadline_exceeded() {
        with_server(Config::default(), |addr| async move {
            let stream = TcpStream::connect(&addr).await.expect("connect");
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(conn);
            let request = Request::post(format!("http://{addr}/echo.Echo/Reply"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("grpc-timeout", "200m")
                .body(LateBody(Box::pin(tokio::time::sleep(Duration::from_secs(
                    3,
                )))))
                .expect("request");
            let started = Instant::now();
            let response = sender.send_request(request).await.expect("response");
            let waited = started.elapsed();
            let status = response
                .headers()
                .get("grpc-status")
                .map(|v| v.as_bytes().to_vec());
            assert_eq!(status.as_deref(), Some(&b"4"[..]), "{response:?}");
            assert!(
                waited >= Duration::from_millis(190),
                "answered early: {waited:?}"
            );
            assert!(waited < Duration::from_secs(2), "answered late: {waited:?}");
        });
    }

    /// A request body that sends nothing until its timer fires.
    struct LateBody(Pin<Box<Sleep>>);

    impl http_body::Body for LateBody {
        type Data = tonic::codegen::Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Infallible>>> {
            self.0.as_mut().poll(cx).map(|()| None)
        }
    }

    /// Both reflection versions answer over the wire, through tonic-reflection's generated clients.
    #[test]
    fn reflection_lists_services_in_both_versions() {
        use tonic::codegen::tokio_stream::{self, StreamExt};
        use tonic_reflection::pb::{v1, v1alpha};
        with_server(Config::default(), |addr| async move {
            let channel = client::connect(&addr, Duration::from_secs(5))
                .await
                .expect("connect");
            let request = v1::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                )),
            };
            let mut replies =
                v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
                    .server_reflection_info(tokio_stream::once(request))
                    .await
                    .expect("v1 call")
                    .into_inner();
            let reply = replies.next().await.expect("a reply").expect("ok");
            let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
                reply.message_response
            else {
                panic!("not a service list: {reply:?}");
            };
            let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
            assert_eq!(
                names,
                [
                    "echo.Echo",
                    "grpc.health.v1.Health",
                    "grpc.reflection.v1.ServerReflection",
                    "grpc.reflection.v1alpha.ServerReflection"
                ]
            );

            let request = v1alpha::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(
                    v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                        "echo.Echo".into(),
                    ),
                ),
            };
            let mut replies =
                v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
                    .server_reflection_info(tokio_stream::once(request))
                    .await
                    .expect("v1alpha call")
                    .into_inner();
            let reply = replies.next().await.expect("a reply").expect("ok");
            let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(
                files,
            )) = reply.message_response
            else {
                panic!("not a file: {reply:?}");
            };
            assert_eq!(files.file_descriptor_proto.len(), 1);
        });
    }

    #[test]
    fn unknown_service_is_unimplemented() {
        with_server(Config::default(), |addr| async move {
            let channel = client::connect(&addr, Duration::from_secs(5))
                .await
                .expect("connect");
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.expect("ready");
            let path = http::uri::PathAndQuery::from_static("/nope.Nope/Reply");
            let codec = tonic_prost::ProstCodec::<EchoRequest, EchoReply>::default();
            let status = grpc
                .unary(tonic::Request::new(EchoRequest::default()), path, codec)
                .await
                .expect_err("unimplemented");
            assert_eq!(status.code(), tonic::Code::Unimplemented);
        });
    }
}
