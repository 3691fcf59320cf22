//! The workstation client behind `echo-client`: connect, call
//! `echo.Echo/Reply` or `grpc.health.v1.Health/Check`, and turn every failure
//! into one [`ClientError`] line (`UNAVAILABLE: connection refused (ADDR)`).
//!
//! The pieces are plain async functions so other tools (the benchmark) can
//! reuse [`connect`] and [`echo`] on their own runtime.

pub mod bench;
pub mod cli;
pub mod stream;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::proto::echo::echo_client::EchoClient;
use crate::proto::echo::EchoRequest;
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_client::HealthClient;
use crate::proto::health::HealthCheckRequest;
use crate::status::Code;

/// Why a call did not produce a reply: a gRPC status (from the server, or
/// synthesised for connection failures and timeouts) and a short reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    /// The gRPC status code.
    pub code: Code,
    /// What went wrong, without the code; may be empty.
    pub message: String,
    /// The server address, for errors that happened before any reply.
    pub addr: Option<String>,
}

impl ClientError {
    /// A failure reaching `addr` (no gRPC status was received).
    pub fn connection(code: Code, message: impl Into<String>, addr: &str) -> ClientError {
        ClientError {
            code,
            message: message.into(),
            addr: Some(addr.to_owned()),
        }
    }

    /// The error for a non-OK status.
    ///
    /// A status the server sent has no error source. One that tonic made up
    /// because the connection failed (reset, GOAWAY, e.g. the server's
    /// connection limit) has one, and tonic labels it UNKNOWN or CANCELLED
    /// with a vague message; it becomes UNAVAILABLE with the innermost cause.
    pub fn from_status(status: &tonic::Status) -> ClientError {
        if caused_by::<tonic::TimeoutExpired>(status) {
            // tonic's own enforcement of the deadline we sent as grpc-timeout.
            return ClientError {
                code: Code::DeadlineExceeded,
                message: "no reply within the deadline".into(),
                addr: None,
            };
        }
        match std::error::Error::source(status) {
            Some(source) => ClientError {
                code: Code::Unavailable,
                message: reason(source),
                addr: None,
            },
            None => ClientError {
                code: Code::from_i32(status.code() as i32),
                message: status.message().to_owned(),
                addr: None,
            },
        }
    }
}

impl fmt::Display for ClientError {
    /// `CODE: message (addr)`, leaving out the parts that are empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.name())?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(addr) = &self.addr {
            write!(f, " ({addr})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ClientError {}

/// PEM files for a TLS connection, as named on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate(s) the server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate chain, for servers that require mutual TLS.
    pub cert: Option<PathBuf>,
    /// Private key of `cert`.
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// Whether any TLS file is named.
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// Reads the files into tonic's TLS settings (ring provider, ALPN h2).
    /// Errors name the option and file: `--ca ca.pem: cannot read: ...`.
    #[cfg(feature = "tls")]
    pub fn load(&self) -> Result<tonic::transport::ClientTlsConfig, String> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        fn read(option: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
            std::fs::read(path)
                .map_err(|e| format!("{option} {}: cannot read: {e}", path.display()))
        }
        let mut config = ClientTlsConfig::new();
        if let Some(ca) = &self.ca {
            config = config.ca_certificate(Certificate::from_pem(read("--ca", ca)?));
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            config = config.identity(Identity::from_pem(
                read("--cert", cert)?,
                read("--key", key)?,
            ));
        }
        Ok(config)
    }
}

/// The server URI for `--addr` (`None`: the default) and the TLS options:
/// a bare `host:port` gets `https://` when TLS files are named, `http://`
/// otherwise. Errors (one line, for the command line) when the address is
/// invalid or the TLS options do not fit it or each other.
pub fn target_addr(addr: Option<&str>, tls: &TlsFiles) -> Result<String, String> {
    let addr = match addr.map(str::trim) {
        None if tls.is_set() => DEFAULT_ADDR.replacen("http://", "https://", 1),
        None => DEFAULT_ADDR.to_owned(),
        Some("") => return Err("--addr: empty address".into()),
        Some(a) if tls.is_set() && !a.contains("://") => format!("https://{a}"),
        Some(a) => normalize_addr(a),
    };
    if !(addr.starts_with("http://") || addr.starts_with("https://")) {
        return Err(format!(
            "--addr: '{addr}': only http:// and https:// addresses are supported"
        ));
    }
    Endpoint::from_shared(addr.clone())
        .map_err(|_| format!("--addr: '{addr}' is not a valid address"))?;
    check_tls(&addr, tls)?;
    Ok(addr)
}

/// The TLS options must fit the address and each other, and need a TLS build.
fn check_tls(addr: &str, tls: &TlsFiles) -> Result<(), String> {
    let https = addr.starts_with("https://");
    if (tls.is_set() || https) && !cfg!(feature = "tls") {
        return Err("this echo-client was built without TLS; rebuild with --features tls".into());
    }
    if tls.is_set() && !https {
        return Err(format!(
            "--ca/--cert/--key need an https:// address, not '{addr}'"
        ));
    }
    if https && tls.ca.is_none() {
        return Err("https:// needs --ca FILE (echo-client has no built-in root store)".into());
    }
    match (&tls.cert, &tls.key) {
        (Some(_), None) => Err("--cert needs --key".into()),
        (None, Some(_)) => Err("--key needs --cert".into()),
        _ => Ok(()),
    }
}

/// The client's one-thread tokio runtime; on failure the error line is
/// printed and the exit code to end with is returned ([`cli::EXIT_FAILED`]).
pub fn runtime() -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::ExitCode::from(cli::EXIT_FAILED)
        })
}

/// Server address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

/// Connects to `addr` (from [`target_addr`]) within `timeout`: over TLS
/// with `tls`' files when any is named, plaintext otherwise. Used by every
/// `echo-client` command, `bench` included.
pub async fn connect_with(
    addr: &str,
    timeout: Duration,
    tls: &TlsFiles,
) -> Result<Channel, ClientError> {
    #[cfg(feature = "tls")]
    if tls.is_set() {
        let config = tls.load().map_err(|e| ClientError {
            code: Code::InvalidArgument,
            message: e,
            addr: None,
        })?;
        return connect_tls(addr, timeout, config).await;
    }
    #[cfg(not(feature = "tls"))]
    let _ = tls; // target_addr refuses TLS options in a build without TLS
    connect(addr, timeout).await
}

/// Turns `host:port` into `http://host:port`; a URI with a scheme is kept.
pub fn normalize_addr(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

/// Opens an HTTP/2 connection to `addr` (`http://host:port` or `host:port`),
/// giving up after `timeout`.
pub async fn connect(addr: &str, timeout: Duration) -> Result<Channel, ClientError> {
    let uri = normalize_addr(addr);
    let endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|_| ClientError::connection(Code::InvalidArgument, "not a valid address", &uri))?;
    connect_endpoint(endpoint, &uri, timeout).await
}

/// Like [`connect`], over TLS (`https://host:port`) with `tls`' trust
/// anchors and, for mutual TLS, client identity.
#[cfg(feature = "tls")]
pub async fn connect_tls(
    addr: &str,
    timeout: Duration,
    tls: tonic::transport::ClientTlsConfig,
) -> Result<Channel, ClientError> {
    let uri = normalize_addr(addr);
    let endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|_| ClientError::connection(Code::InvalidArgument, "not a valid address", &uri))?
        .tls_config(tls)
        .map_err(|e| ClientError::connection(Code::InvalidArgument, reason(&e), &uri))?;
    connect_endpoint(endpoint, &uri, timeout).await
}

/// Connects to a command line's target, over TLS when it names TLS files.
pub async fn connect_target(target: &cli::Target) -> Result<Channel, ClientError> {
    connect_with(&target.addr, target.timeout, &target.tls).await
}

/// Connects `endpoint` (whose URI is `uri`), giving up after `timeout`.
async fn connect_endpoint(
    endpoint: Endpoint,
    uri: &str,
    timeout: Duration,
) -> Result<Channel, ClientError> {
    match tokio::time::timeout(timeout, endpoint.connect()).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(ClientError::connection(Code::Unavailable, reason(&e), uri)),
        Err(_) => Err(ClientError::connection(
            Code::DeadlineExceeded,
            format!(
                "not connected within {}",
                crate::config::show_duration(timeout)
            ),
            uri,
        )),
    }
}

/// Calls `echo.Echo/Reply` with `message` and returns the reply text. The
/// deadline is sent as `grpc-timeout` and also enforced locally.
pub async fn echo(
    channel: Channel,
    message: &str,
    timeout: Duration,
) -> Result<String, ClientError> {
    let mut request = tonic::Request::new(EchoRequest {
        message: message.to_owned(),
    });
    request.set_timeout(timeout);
    let call = async { EchoClient::new(channel).reply(request).await };
    let reply = with_deadline(timeout, call).await?;
    Ok(reply.into_inner().message)
}

/// Calls `grpc.health.v1.Health/Check` for `service` ("" = the whole
/// server) and returns the serving status.
pub async fn health(
    channel: Channel,
    service: &str,
    timeout: Duration,
) -> Result<ServingStatus, ClientError> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    request.set_timeout(timeout);
    let call = async { HealthClient::new(channel).check(request).await };
    let reply = with_deadline(timeout, call).await?;
    Ok(ServingStatus::try_from(reply.into_inner().status).unwrap_or(ServingStatus::Unknown))
}

/// Runs a call, mapping a non-OK status to [`ClientError`] and a call that
/// outlives `timeout` to DEADLINE_EXCEEDED.
async fn with_deadline<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, ClientError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(status)) => Err(ClientError::from_status(&status)),
        Err(_) => Err(ClientError {
            code: Code::DeadlineExceeded,
            message: format!("no reply within {}", crate::config::show_duration(timeout)),
            addr: None,
        }),
    }
}

/// Whether `E` is somewhere in the source chain of `e`.
fn caused_by<E: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.is::<E>() {
            return true;
        }
        next = err.source();
    }
    false
}

/// The innermost cause of an error, phrased for a person: an I/O error's
/// kind ("connection refused") rather than its OS wording and number.
fn reason(e: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = e;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    match innermost.downcast_ref::<std::io::Error>() {
        Some(io) => io_reason(io),
        None => innermost.to_string(),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        TimedOut => "connection timed out".into(),
        HostUnreachable => "host unreachable".into(),
        NetworkUnreachable => "network unreachable".into(),
        AddrNotAvailable => "address not available".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_connection_errors_with_address() {
        let e = ClientError::connection(
            Code::Unavailable,
            "connection refused",
            "http://127.0.0.1:1",
        );
        assert_eq!(
            e.to_string(),
            "UNAVAILABLE: connection refused (http://127.0.0.1:1)"
        );
    }

    #[test]
    fn formats_statuses_from_the_server() {
        let status = tonic::Status::resource_exhausted("message too large");
        let e = ClientError::from_status(&status);
        assert_eq!(e.code, Code::ResourceExhausted);
        assert_eq!(e.to_string(), "RESOURCE_EXHAUSTED: message too large");
        let bare = ClientError::from_status(&tonic::Status::unimplemented(""));
        assert_eq!(bare.to_string(), "UNIMPLEMENTED");
    }

    #[test]
    fn transport_failures_become_unavailable() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let status = tonic::Status::from_error(Box::new(std::io::Error::other(reset)));
        let e = ClientError::from_status(&status);
        assert_eq!(e.to_string(), "UNAVAILABLE: connection reset");
        let expired = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(
            ClientError::from_status(&expired).code,
            Code::DeadlineExceeded
        );
    }

    #[test]
    fn io_errors_read_as_their_kind() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let wrapped = std::io::Error::other(io);
        assert_eq!(reason(&wrapped), "connection refused");
    }

    #[test]
    fn addresses_get_a_scheme() {
        assert_eq!(normalize_addr("pi.local:50051"), "http://pi.local:50051");
        assert_eq!(normalize_addr("[::1]:50051"), "http://[::1]:50051");
        assert_eq!(normalize_addr("https://x:1"), "https://x:1");
    }

    #[test]
    fn refused_connection_is_unavailable() {
        // Bind then drop a listener: its port is now (almost certainly) closed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr").to_string();
        drop(listener);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let result = rt.block_on(connect(&addr, Duration::from_secs(5)));
        let e = result.expect_err("connected to a closed port");
        assert_eq!(e.code, Code::Unavailable, "{e}");
        assert_eq!(
            e.to_string(),
            format!("UNAVAILABLE: connection refused (http://{addr})")
        );
    }
}
