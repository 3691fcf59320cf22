//! gRPC over the sans-IO HTTP/2 core: still no sockets and no clock reads.
//!
//! | file | job |
//! | --- | --- |
//! | [`message`] | 5-byte length-prefixed messages, the size bound |
//! | [`timeout`] | `grpc-timeout` → deadline |
//! | [`status`] | `grpc-status` / `grpc-message`, Trailers-Only |
//! | [`services`] | Echo and Health as functions over message bytes |
//! | `reflection` | server reflection from the compiled-in descriptor set (feature `reflection`) |
//! | [`session`] | one connection: HTTP/2 events → calls → responses |

pub mod message;
#[cfg(feature = "reflection")]
pub mod reflection;
pub mod services;
pub mod session;
pub mod status;
pub mod timeout;

#[cfg(test)]
pub(crate) mod testwire;
