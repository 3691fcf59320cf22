//! PING frames (RFC 9113 §6.7).

use super::Head;
use crate::h2::error::{Error, ErrorCode};

/// ACK flag.
pub const ACK: u8 = 0x1;

/// A parsed PING frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    /// The 8 opaque bytes.
    pub payload: [u8; 8],
    /// ACK was set: this answers one of our PINGs.
    pub ack: bool,
}

impl Ping {
    /// Parses and checks a PING frame.
    pub fn parse(head: &Head, payload: &[u8]) -> Result<Ping, Error> {
        // §6.7: "If a PING frame is received with a Stream Identifier field value other
        // than 0x00, the recipient MUST respond with a connection error of type
        // PROTOCOL_ERROR."
        if head.stream_id != 0 {
            return Err(Error::conn(ErrorCode::ProtocolError, "PING on a stream"));
        }
        // §6.7: "Receipt of a PING frame with a length field value other than 8 MUST
        // be treated as a connection error of type FRAME_SIZE_ERROR."
        let Ok(payload) = <[u8; 8]>::try_from(payload) else {
            return Err(Error::conn(
                ErrorCode::FrameSizeError,
                "PING length is not 8",
            ));
        };
        Ok(Ping {
            payload,
            ack: head.has(ACK),
        })
    }

    /// Appends a PING frame to `dst`.
    pub fn encode(payload: [u8; 8], ack: bool, dst: &mut Vec<u8>) {
        let flags = if ack { ACK } else { 0 };
        Head {
            length: 8,
            kind: super::kind::PING,
            flags,
            stream_id: 0,
        }
        .encode(dst);
        dst.extend_from_slice(&payload);
    }
}
