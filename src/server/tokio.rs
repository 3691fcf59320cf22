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
    runtime.block_on(serve(config))
}

/// The async body of [`run`].
async fn serve(config: Config) -> Result<(), ServeError> {
    // Signal handlers first: a SIGTERM right after the startup line must be a
    // graceful shutdown, never the default "terminate".
    let signal = shutdown_signal().map_err(ServeError::Io)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Bind(config.listen, e))?;
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
    accept_loop(listener, &shared, stop_rx, signal).await;

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
                closing = true;
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
        Ok(tonic::Response::new(crate::service::reply(request.get_ref())))
    }
}

/// A routed call: the tonic service's response future, boxed.
type RouteFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// One service's entry point, type-erased so the table can hold all of them.
type Handler = Box<dyn Fn(Request<Incoming>) -> RouteFuture + Send + Sync>;

/// The served services by fully-qualified name (`echo.Echo`, ...).
struct Routes(Vec<(&'static str, Handler)>);

impl Routes {
    /// Adds a tonic service under its [`NamedService::NAME`].
    fn add<S>(&mut self, service: S)
    where
        S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let handler = move |request: Request<Incoming>| -> RouteFuture {
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
    fn call(&self, request: Request<Incoming>) -> RouteFuture {
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
async fn routes(config: &Config) -> Result<(tonic_health::server::HealthReporter, Routes), ServeError> {
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

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection().build_v1().map_err(reflection_error)?;
    routes.add(v1.max_decoding_message_size(decode));
    let v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;
    routes.add(v1alpha.max_decoding_message_size(decode));
    Ok((reporter, routes))
}

fn reflection_error(e: tonic_reflection::server::Error) -> ServeError {
    ServeError::Io(io::Error::other(format!("reflection descriptors: {e}")))
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
            return Box::pin(async move { Ok(unsupported_media_type().map(|b| CallBody::new(b, guard, None))) });
        }
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| parse_grpc_timeout(v.as_bytes()))
            .map(|timeout| Instant::now() + timeout);
        let call = self.shared.routes.call(request);
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
    let mut response = tonic::Status::internal("content-type must be application/grpc")
        .into_http::<Body>();
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
            trailers.insert("grpc-status", HeaderValue::from(tonic::Code::DeadlineExceeded as i32));
            trailers.insert("grpc-message", HeaderValue::from_static("deadline exceeded"));
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
