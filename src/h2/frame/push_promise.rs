//! PUSH_PROMISE frames (RFC 9113 §6.6). Only servers push, so a server never
//! accepts one.

use super::Head;
use crate::h2::error::{Error, ErrorCode};

/// Rejects a PUSH_PROMISE received by a server.
pub fn reject(_head: &Head) -> Error {
    // §8.4: "A client cannot push. Thus, servers MUST treat the receipt of a
    // PUSH_PROMISE frame as a connection error of type PROTOCOL_ERROR."
    Error::conn(ErrorCode::ProtocolError, "client sent PUSH_PROMISE")
}
