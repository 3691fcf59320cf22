//! echo-server on tonic's generated services, hyper's HTTP/2 server and a
//! single-threaded tokio runtime.
//!
//! A request's path, by file:
//!
//! | file | job |
//! | --- | --- |
//! | `tokio.rs` | runtime, bind, signals, accept loop, fair connection slots ([`super::slots`]), refusals ([`refuse`]), drain |
//! | `tokio/connection.rs` | one HTTP/2 connection: hyper, plus handshake, idle and shutdown timers |
//! | `tokio/call.rs` | one call: content-type check, `grpc-timeout`, request size limit, accounting |
//! | `tokio/routes.rs` | the services (Echo via [`crate::service::reply`], health, reflection) by `:path` |
//! | `tokio/reflection.rs` | reflection v1 and v1alpha: tonic adapter to [`crate::grpc::reflection`] |
//! | `tokio/interop.rs` | grpc's interop TestService over `service::interop` (feature `interop`) |
//! | `tokio/telemetry.rs` | board telemetry over `service::telemetry` (feature `telemetry`) |
//! | `tokio/stream.rs` | response streams fed by a task through a one-message channel |
//!
//! We drive hyper ourselves instead of using `tonic::transport::Server`: it
//! lets us own the accept loop (connection cap), the per-connection timers,
//! the drain deadline and the `grpc-timeout` status, and it leaves axum,
//! HTTP/1 and the tower middleware out of the binary.
//!
//! Not applied: hyper's `max_pending_accept_reset_streams` keeps its default
//! (20) as there is no Config knob for it. Reset accounting differs from the
//! runtime-free core's decaying rates (`crate::h2::rate`) where h2 cannot be
//! configured: h2 counts `--max-local-resets` over a connection's lifetime
//! (refused streams included, which an honest client that respects
//! MAX_CONCURRENT_STREAMS never causes) and counts client cancels only for
//! streams not yet accepted, so cancelling clients are never cut off.

mod call;
mod connection;
#[cfg(feature = "interop")]
mod interop;
mod reflection;
mod routes;
mod stream;
#[cfg(feature = "telemetry")]
mod telemetry;

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tonic::server::NamedService;
use tonic_health::ServingStatus;

use self::connection::{serve_connection, ConnState};
use self::routes::{routes, EchoService, Routes};
use super::refuse::REFUSAL;
use super::slots::{self, Admission, Occupant, RefusalLog};
use super::ServeError;
use crate::config::Config;
use crate::grpc::budget::{Budget, Plan};
use crate::proto::echo::echo_server::EchoServer;

/// How long a refused connection is kept open so the client can read the
/// GOAWAY before the socket closes (closing with unread input would send RST).
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// Refused connections allowed to linger at once; beyond this they are
/// closed right after the write, so a connection flood cannot pile them up.
const MAX_LINGERING_REFUSALS: usize = 64;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

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
        let signals = shutdown_signals().map_err(ServeError::Io)?;
        let listener = bind(&config).await?;
        serve(listener, config, signals).await
    })
}

/// Binds the listening socket.
async fn bind(config: &Config) -> Result<TcpListener, ServeError> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Bind(config.listen, e))
}

/// Serves on `listener` until the first message on `signals` (or its
/// close), then drains; a second message ends the drain at once.
async fn serve(
    listener: TcpListener,
    config: Config,
    mut signals: mpsc::UnboundedReceiver<()>,
) -> Result<(), ServeError> {
    let bound = listener.local_addr().map_err(ServeError::Io)?;
    #[cfg(feature = "tls")]
    let tls = super::tls::server_config(&config)
        .map_err(ServeError::Tls)?
        .map(tokio_rustls::TlsAcceptor::from);

    let plan = config.memory_plan().map_err(ServeError::Config)?;
    let (health, routes) = routes(&config).await?;
    let shared = Arc::new(Shared {
        routes,
        http2: http2_builder(&config, &plan),
        budget: Budget::new(plan.pool),
        window: plan.window,
        calls: Arc::new(AtomicUsize::new(0)),
        registry: Arc::new(Mutex::new(Registry::default())),
        lingering: Arc::new(AtomicUsize::new(0)),
        config,
        #[cfg(feature = "tls")]
        tls,
    });
    super::log_startup(bound, &shared.config);

    let (stop_tx, stop_rx) = watch::channel(false);
    let shutdown = async {
        signals.recv().await;
    };
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
    let drain = tokio::time::timeout(shared.config.drain_timeout, stop_tx.closed());
    let again = async {
        if signals.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    };
    let drained = tokio::select! {
        drained = drain => drained.is_ok(),
        () = again => {
            crate::warn!("second signal: stopping without waiting for in-flight calls");
            false
        }
    };
    let abandoned = if drained {
        0
    } else {
        shared.calls.load(Ordering::Relaxed)
    };
    super::log_shutdown_done(abandoned);
    Ok(())
}

/// One message per SIGINT or SIGTERM (the first starts the drain, the
/// second ends it), forwarded by a task that lives as long as the runtime.
#[cfg(unix)]
fn shutdown_signals() -> io::Result<mpsc::UnboundedReceiver<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// One message per Ctrl-C (non-Unix systems have no SIGTERM).
#[cfg(not(unix))]
fn shutdown_signals() -> io::Result<mpsc::UnboundedReceiver<()>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        async move { while tokio::signal::ctrl_c().await.is_ok() && tx.send(()).is_ok() {} },
    );
    Ok(rx)
}

/// State shared by the accept loop and every connection.
struct Shared {
    /// The services, by name.
    routes: Routes,
    /// hyper's HTTP/2 settings, every limit from [`Config`] applied.
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    /// The memory pool request bodies reserve from ([`crate::grpc::budget`]).
    budget: Budget,
    /// The budget's flow-control window (messages up to it are "small").
    window: usize,
    /// Calls in flight on all connections, for the drain report.
    calls: Arc<AtomicUsize>,
    /// Open (accepted, not refused) connections, for the fair connection slots.
    registry: Arc<Mutex<Registry>>,
    /// Refused and closed connections still lingering, see [`MAX_LINGERING_REFUSALS`].
    lingering: Arc<AtomicUsize>,
    /// The configuration the server runs with.
    config: Config,
    /// Set when serving TLS: wraps every accepted socket.
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// hyper's HTTP/2 server settings with every relevant [`Config`] knob set
/// explicitly, never left to a library default.
fn http2_builder(
    config: &Config,
    plan: &Plan,
) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    // The memory budget's windows: what h2 may buffer per stream and per
    // connection before the application reads it (fixed: no adaptive growth).
    let window = u32::try_from(plan.window).unwrap_or(u32::MAX);
    builder
        .timer(TokioTimer::new())
        .adaptive_window(false)
        .initial_stream_window_size(window)
        .initial_connection_window_size(window)
        .max_send_buf_size(plan.window)
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

/// Every open connection, for the fair connection slots.
#[derive(Default)]
struct Registry {
    /// Key of the next connection.
    next: u64,
    /// Open connections by key.
    conns: HashMap<u64, Entry>,
}

/// One open connection in the [`Registry`].
struct Entry {
    /// The client's address.
    ip: IpAddr,
    /// Its calls and idle time.
    state: Arc<ConnState>,
    /// Notified to make it give up its slot (GOAWAY, graceful close).
    evict: Arc<Notify>,
    /// Already asked to leave: holds no slot any more.
    leaving: bool,
}

/// A connection's place in the [`Registry`]; dropping it (when hyper drops
/// the socket) gives the slot back.
struct Registration {
    registry: Arc<Mutex<Registry>>,
    key: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.registry).conns.remove(&self.key);
    }
}

/// Locks the registry (a panic elsewhere leaves it usable: it is only counts).
fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Decides on a connection from `ip` (see [`slots::admit`]); on admission
/// registers it, after asking an idle one to give way if needed.
fn admit(shared: &Shared, ip: IpAddr) -> Result<connection::Admitted, slots::Refusal> {
    let mut registry = lock(&shared.registry);
    let occupants = registry.conns.iter().map(|(key, e)| {
        let occupant = Occupant {
            ip: e.ip,
            idle_since: e.state.idle_since(),
            leaving: e.leaving,
        };
        (*key, occupant)
    });
    let config = &shared.config;
    let admission = slots::admit(
        occupants,
        ip,
        config.max_connections,
        config.max_connections_per_ip,
    );
    match admission {
        Admission::Admit => {}
        Admission::Evict(key) => {
            if let Some(victim) = registry.conns.get_mut(&key) {
                victim.leaving = true;
                victim.evict.notify_one();
            }
        }
        Admission::Refuse(why) => return Err(why),
    }
    let key = registry.next;
    registry.next += 1;
    let state = Arc::new(ConnState::new());
    let evict = Arc::new(Notify::new());
    let entry = Entry {
        ip,
        state: Arc::clone(&state),
        evict: Arc::clone(&evict),
        leaving: false,
    };
    registry.conns.insert(key, entry);
    let registration = Registration {
        registry: Arc::clone(&shared.registry),
        key,
    };
    Ok(connection::Admitted {
        registration,
        state,
        evict,
    })
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
    let mut refusals = RefusalLog::default();
    loop {
        let summary = refusals.due().map(tokio::time::Instant::from_std);
        let (stream, peer) = tokio::select! {
            _ = &mut signal => return,
            () = tokio::time::sleep_until(summary.unwrap_or_else(tokio::time::Instant::now)),
                if summary.is_some() =>
            {
                if let Some(line) = refusals.flush(std::time::Instant::now()) {
                    crate::warn!("{line}");
                }
                continue;
            }
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
        match admit(shared, peer.ip()) {
            Ok(admitted) => {
                crate::debug!("{peer}: connection accepted");
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    admitted,
                    Arc::clone(shared),
                    stop.clone(),
                ));
            }
            Err(why) => {
                let now = std::time::Instant::now();
                if let Some(line) = refusals.refused(now, &peer.to_string(), why) {
                    crate::warn!("{line}");
                }
                let linger = Slot::take(&shared.lingering, MAX_LINGERING_REFUSALS);
                tokio::spawn(refuse(stream, linger, Arc::clone(shared)));
            }
        }
    }
}

/// A counted place in a bounded set (lingering refusals); dropping it gives
/// the place back.
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

/// Refuses a connection: [`REFUSAL`] (SETTINGS + GOAWAY), inside TLS when
/// TLS is on (the handshake first, within the handshake timeout), then our
/// side closed and, if a lingering slot was free, a short wait for the client
/// to close its side so it gets to read the GOAWAY. Without a lingering slot
/// a TLS connection is just closed (a flood must not buy handshakes).
async fn refuse(stream: TcpStream, linger: Option<Slot>, shared: Arc<Shared>) {
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &shared.tls {
        if linger.is_none() {
            return;
        }
        let timeout = shared.config.handshake_timeout;
        if let Ok(Ok(tls)) = tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            goodbye(tls, &REFUSAL, linger).await;
        }
        return;
    }
    let _ = shared;
    goodbye(stream, &REFUSAL, linger).await;
}

/// Input a lingering connection may still send before it is cut off: a
/// client that keeps flooding after our GOAWAY gets a reset, not our time.
const LINGER_READ_LIMIT: usize = 256 * 1024;

/// Writes `bytes`, closes our side (TLS: close_notify, then FIN), and, with
/// a `linger` slot, reads and drops input until the client closes (at most
/// [`LINGER_READ_LIMIT`] bytes), all within [`REFUSE_LINGER`]: closing with
/// unread input would send an RST that can destroy our GOAWAY at the client.
async fn goodbye<S>(mut stream: S, bytes: &[u8], linger: Option<Slot>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let goodbye = async {
        let mut sent = 0;
        while let Some(rest) = bytes.get(sent..).filter(|rest| !rest.is_empty()) {
            match poll_fn(|cx| Pin::new(&mut stream).poll_write(cx, rest)).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => sent += n,
            }
        }
        poll_fn(|cx| Pin::new(&mut stream).poll_flush(cx)).await?;
        poll_fn(|cx| Pin::new(&mut stream).poll_shutdown(cx)).await?;
        if linger.is_some() {
            let mut sink = [0u8; 4096];
            let mut allowance = LINGER_READ_LIMIT;
            loop {
                let mut buf = ReadBuf::new(&mut sink);
                poll_fn(|cx| Pin::new(&mut stream).poll_read(cx, &mut buf)).await?;
                let n = buf.filled().len();
                if n == 0 || n >= allowance {
                    break;
                }
                allowance -= n;
            }
        }
        Ok::<(), io::Error>(())
    };
    // A client that neither reads nor closes gets cut off; nothing to report.
    let _ = tokio::time::timeout(REFUSE_LINGER, goodbye).await;
}

#[cfg(test)]
mod tests {
    use super::*;

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
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::task::{Context, Poll};

    use http_body::Frame;
    use hyper_util::rt::TokioIo;
    use tokio::time::{Instant, Sleep};
    use tonic::codegen::http::{self, Request};

    use super::*;
    use crate::client::{self, ClientError};
    use crate::proto::echo::{EchoReply, EchoRequest};
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
            let (stop, stopped) = mpsc::unbounded_channel();
            let server = serve(listener, config, stopped);
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

    /// Both reflection versions answer over the wire, listing every served
    /// service: v1 through its generated client, v1alpha as raw bytes (the
    /// messages are the same on the wire).
    #[test]
    fn reflection_lists_services_in_both_versions() {
        use crate::grpc::reflection::pb;
        use pb::server_reflection_request::MessageRequest;
        use pb::server_reflection_response::MessageResponse;
        use prost::Message;
        use tonic::codegen::tokio_stream::{self, StreamExt};

        let mut expected = vec!["echo.Echo"];
        #[cfg(feature = "interop")]
        expected.push("grpc.testing.TestService");
        #[cfg(feature = "telemetry")]
        expected.push("telemetry.Telemetry");
        expected.extend([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]);
        let names = |reply: pb::ServerReflectionResponse| match reply.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("not a service list: {other:?}"),
        };
        with_server(Config::default(), |addr| async move {
            let channel = client::connect(&addr, Duration::from_secs(5))
                .await
                .expect("connect");
            let request = pb::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut replies =
                pb::server_reflection_client::ServerReflectionClient::new(channel.clone())
                    .server_reflection_info(tokio_stream::once(request.clone()))
                    .await
                    .expect("v1 call")
                    .into_inner();
            let reply = replies.next().await.expect("a reply").expect("ok");
            assert_eq!(names(reply), expected);

            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.expect("ready");
            let path = http::uri::PathAndQuery::from_static(
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            );
            let request = tonic::codegen::Bytes::from(request.encode_to_vec());
            let mut replies = grpc
                .streaming(
                    tonic::Request::new(tokio_stream::once(request)),
                    path,
                    reflection::RawCodec,
                )
                .await
                .expect("v1alpha call")
                .into_inner();
            let reply = replies.next().await.expect("a reply").expect("ok");
            let reply = pb::ServerReflectionResponse::decode(reply).expect("decodes");
            assert_eq!(names(reply), expected);
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
