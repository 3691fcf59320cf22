//! Sans-IO HTTP/2 (RFC 9113) for the runtime-free build: no sockets, no threads, no clock reads.

pub mod hpack;
