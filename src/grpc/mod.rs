//! gRPC over the sans-IO HTTP/2 core: still no sockets and no clock reads.
//!
//! Only [`timeout`] is compiled into the tokio flavour too, so both flavours
//! read `grpc-timeout` with the same code; the rest is the runtime-free build's.
//!
//! | file | job |
//! | --- | --- |
//! | `message` | 5-byte length-prefixed messages, the size bound |
//! | [`timeout`] | `grpc-timeout` → deadline |
//! | `status` | `grpc-status` / `grpc-message`, Trailers-Only |
//! | `services` | Echo and Health as functions over message bytes |
//! | `reflection` | server reflection from the compiled-in descriptor set (feature `reflection`) |
//! | `session` | one connection: HTTP/2 events → calls → responses |

pub mod budget;
#[cfg(feature = "runtime-free")]
pub mod message;
#[cfg(all(feature = "runtime-free", feature = "reflection"))]
pub mod reflection;
#[cfg(feature = "runtime-free")]
pub mod services;
#[cfg(feature = "runtime-free")]
pub mod session;
#[cfg(feature = "runtime-free")]
pub mod status;
pub mod timeout;

#[cfg(all(test, feature = "runtime-free"))]
pub(crate) mod testwire;
