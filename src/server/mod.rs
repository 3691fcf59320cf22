//! The two server drivers and what they share.
//!
//! Each flavour exposes `run(Config) -> Result<(), ServeError>`: bind, log the
//! startup line, serve until SIGINT/SIGTERM, drain in-flight calls for at most
//! `drain_timeout`, return. The startup line and error texts are built here so
//! both flavours print exactly the same thing (tests read the bound address
//! from the startup line).

use std::fmt;
use std::net::SocketAddr;

use crate::config::Config;

pub mod refuse;
pub mod slots;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tokio-server")]
pub mod tokio;

#[cfg(feature = "tokio-server")]
pub use self::tokio::run;

#[cfg(feature = "runtime-free")]
pub mod readiness;

#[cfg(feature = "runtime-free")]
pub use self::readiness::run;

/// Why the server could not start or stopped with an error. `echo-server`
/// prints it as one line and exits with code 1.
#[derive(Debug)]
pub enum ServeError {
    /// The listen address could not be bound (in use, not local, no permission).
    Bind(SocketAddr, std::io::Error),
    /// Any other I/O failure of the server itself (not of one connection).
    Io(std::io::Error),
    /// The configuration cannot work (e.g. its limits do not fit the memory
    /// budget); the text names the option to change.
    Config(crate::config::ConfigError),
    /// The TLS files could not be loaded (missing, unreadable, invalid).
    #[cfg(feature = "tls")]
    Tls(tls::TlsError),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            ServeError::Io(e) => write!(f, "server I/O error: {e}"),
            ServeError::Config(e) => write!(f, "{e}"),
            #[cfg(feature = "tls")]
            ServeError::Tls(e) => write!(f, "cannot set up TLS: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// Logs the startup line (version, flavour, bound address and limits; tests
/// find the real port for `--listen 127.0.0.1:0` after "listening on ") and
/// the worst-case memory the limits allow.
pub fn log_startup(bound: SocketAddr, config: &Config) {
    crate::info!(
        "echo-server {} ({}) listening on {bound} {}",
        crate::VERSION,
        crate::FLAVOUR,
        config.summary()
    );
    if let Ok(plan) = config.memory_plan() {
        crate::info!("worst case: {}", plan.summary());
    }
}

/// Logs that shutdown started, and how long in-flight calls get.
pub fn log_shutdown_started(config: &Config) {
    crate::info!(
        "shutdown requested: refusing new connections, draining in-flight calls (up to {})",
        crate::config::show_duration(config.drain_timeout)
    );
}

/// Logs the end of shutdown; `abandoned` counts calls cut off at the deadline.
pub fn log_shutdown_done(abandoned: usize) {
    if abandoned == 0 {
        crate::info!("shutdown complete");
    } else {
        crate::warn!("shutdown complete; {abandoned} call(s) did not finish within the drain time");
    }
}
