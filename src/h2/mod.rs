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
//! | `stream.rs` | one stream's state (§5.1) and send queue |
//! | `request.rs` | request header validation (§8.3) into a `RequestHead` |
//! | `conn.rs` | the `Connection` state machine |

pub mod error;
pub mod frame;

pub use error::{ConnError, Error, ErrorCode, StreamError};
