//! WINDOW_UPDATE frames (RFC 9113 §6.9).

use super::Head;
use crate::h2::error::{Error, ErrorCode};

/// A parsed WINDOW_UPDATE frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowUpdate {
    /// 0 for the connection window, else the stream.
    pub stream_id: u32,
    /// Credit added (1..=2^31-1).
    pub increment: u32,
}

impl WindowUpdate {
    /// Parses and checks a WINDOW_UPDATE frame.
    pub fn parse(head: &Head, payload: &[u8]) -> Result<WindowUpdate, Error> {
        // §6.9: "A WINDOW_UPDATE frame with a length other than 4 octets MUST be
        // treated as a connection error of type FRAME_SIZE_ERROR."
        let Ok(b) = <[u8; 4]>::try_from(payload) else {
            return Err(Error::conn(
                ErrorCode::FrameSizeError,
                "WINDOW_UPDATE length is not 4",
            ));
        };
        let increment = u32::from_be_bytes(b) & 0x7fff_ffff;
        // §6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow
        // control window increment of 0 as a stream error of type PROTOCOL_ERROR; errors
        // on the connection flow-control window MUST be treated as a connection error."
        if increment == 0 {
            return Err(if head.stream_id == 0 {
                Error::conn(ErrorCode::ProtocolError, "WINDOW_UPDATE increment 0")
            } else {
                Error::stream(
                    head.stream_id,
                    ErrorCode::ProtocolError,
                    "WINDOW_UPDATE increment 0",
                )
            });
        }
        Ok(WindowUpdate {
            stream_id: head.stream_id,
            increment,
        })
    }

    /// Appends a WINDOW_UPDATE frame to `dst`.
    pub fn encode(stream_id: u32, increment: u32, dst: &mut Vec<u8>) {
        Head {
            length: 4,
            kind: super::kind::WINDOW_UPDATE,
            flags: 0,
            stream_id,
        }
        .encode(dst);
        dst.extend_from_slice(&(increment & 0x7fff_ffff).to_be_bytes());
    }
}
