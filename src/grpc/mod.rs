//! gRPC over the sans-IO HTTP/2 core: still no sockets and no clock reads.
//!
//! [`timeout`], [`reflection`] and [`budget`] are compiled into the tokio
//! flavour too, so both flavours read `grpc-timeout`, answer reflection and
//! split the memory budget with the same code; the rest is the runtime-free build's.
//!
//! | file | job |
//! | --- | --- |
//! | `message` | 5-byte length-prefixed messages, the size bound |
//! | [`timeout`] | `grpc-timeout` → deadline |
//! | `status` | `grpc-status` / `grpc-message`, Trailers-Only |
//! | `api` | the service API: call model, `Streaming`, `Service`, `Router` |
//! | `base64` | `-bin` metadata values |
//! | `services` | Echo, Health and reflection, written against `api` |
//! | [`reflection`] | server reflection from the compiled-in descriptor set (both flavours; feature `reflection` in the runtime-free one) |
//! | `interop` | grpc's interop `TestService` on the service API (feature `interop`) |
//! | `telemetry` | `telemetry.Telemetry` on the service API (feature `telemetry`) |
//! | `session` | one connection: HTTP/2 events → calls → responses |
//! | [`budget`] | the memory budget: windows derived from it, the shared pool (both flavours) |

#[cfg(feature = "runtime-free")]
pub mod api;
#[cfg(feature = "runtime-free")]
pub mod base64;
pub mod budget;
#[cfg(all(feature = "runtime-free", feature = "interop"))]
pub mod interop;
#[cfg(feature = "runtime-free")]
pub mod message;
#[cfg(any(
    feature = "tokio-server",
    all(feature = "runtime-free", feature = "reflection")
))]
pub mod reflection;
#[cfg(feature = "runtime-free")]
pub mod services;
#[cfg(feature = "runtime-free")]
pub mod session;
#[cfg(feature = "runtime-free")]
pub mod status;
#[cfg(all(feature = "runtime-free", feature = "telemetry"))]
pub mod telemetry;
pub mod timeout;

#[cfg(all(test, feature = "runtime-free"))]
pub(crate) mod testwire;
