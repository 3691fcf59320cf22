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

pub use conn::{Connection, Event, Report, SendError};
pub use error::{ConnError, Error, ErrorCode, StreamError};
pub use request::RequestHead;

use std::time::Duration;

/// A point in time as the driver tells it: the time since an epoch the
/// driver picks (its start, say). Only differences matter, so the core needs
/// no clock of its own (and no `std::time::Instant`, which a `no_std` build
/// would not have).
pub type Timestamp = Duration;

/// The per-connection limits. The driver builds them (from its configuration:
/// `Config::h2_limits`); the core never sees the CLI configuration.
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
