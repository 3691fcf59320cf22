//! A sans-IO HTTP/2 server connection (RFC 9113) for the runtime-free build.
//!
//! No sockets, no threads, no clock reads: the driver feeds bytes and the
//! current time in (`handle_*`) and takes bytes, events and the next deadline
//! out (`poll_*`). See `docs/runtime-free-design.md` for the contract.
//!
//! | file | job |
//! | --- | --- |
//! | `frame/` | frame codec, one file per frame type, RFC checks beside the code |
//! | `hpack/` | header compression (RFC 7541) |
//! | `settings.rs` | our SETTINGS and the peer's |
//! | `flow.rs` | flow-control windows, both directions |
//! | `rate.rs` | event rates that decay over a window (the reset limits) |
//! | `stream.rs` | one stream's state (§5.1) and send queue |
//! | `request.rs` | request header validation (§8.3) into a `RequestHead` |
//! | `conn/` | the `Connection` state machine: `recv.rs` input, `send.rs` output |

pub mod conn;
pub mod error;
pub mod flow;
pub mod frame;
pub mod hpack;
pub mod rate;
pub mod request;
pub mod settings;
pub mod stream;

pub use conn::{Connection, Event, SendError};
pub use error::{ConnError, Error, ErrorCode, StreamError};
pub use request::RequestHead;

use std::time::Duration;

/// The per-connection limits, built once from [`crate::config::Config`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise; more streams are refused.
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce (RFC 9113 size).
    pub max_header_list_size: u32,
    /// Stream errors the client may cause per 10 s (a decaying rate, never a
    /// lifetime count) before GOAWAY(ENHANCE_YOUR_CALM).
    pub max_local_resets: usize,
    /// Time the client has to send the preface and its SETTINGS.
    pub handshake_timeout: Duration,
    /// Close (GOAWAY NO_ERROR) after this long without open streams; `None` = never.
    pub idle_timeout: Option<Duration>,
    /// Send a PING after this long without input; `None` = off.
    pub keepalive_interval: Option<Duration>,
    /// Close if a keepalive PING is not answered within this.
    pub keepalive_timeout: Duration,
    /// Our SETTINGS_INITIAL_WINDOW_SIZE and the connection receive window.
    /// At least 65,535 (the RFC default), so a client that sends before it
    /// has seen our SETTINGS never overruns it.
    pub initial_window_size: u32,
    /// Our SETTINGS_MAX_FRAME_SIZE (16,384..=2^24-1).
    pub max_frame_size: u32,
}

/// Default receive window per stream and per connection: large enough for
/// LAN throughput, small enough for a board with many connections.
pub const DEFAULT_WINDOW: u32 = 256 * 1024;

impl Limits {
    /// The limits `config` asks for.
    pub fn from_config(config: &crate::config::Config) -> Limits {
        Limits {
            max_concurrent_streams: config.max_concurrent_streams,
            max_header_list_size: config.max_header_list_size,
            max_local_resets: config.max_local_resets,
            handshake_timeout: config.handshake_timeout,
            idle_timeout: config.idle_timeout,
            keepalive_interval: config.keepalive_interval,
            keepalive_timeout: config.keepalive_timeout,
            // The memory budget's per-stream and per-connection window.
            initial_window_size: config
                .memory_plan()
                .ok()
                .and_then(|plan| u32::try_from(plan.window).ok())
                .unwrap_or(DEFAULT_WINDOW),
            max_frame_size: settings::DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

impl Default for Limits {
    /// The limits of the default configuration.
    fn default() -> Limits {
        Limits::from_config(&crate::config::Config::default())
    }
}
