//! RST_STREAM frames (RFC 9113 §6.4).

use super::Head;
use crate::h2::error::{Error, ErrorCode};

/// A parsed RST_STREAM frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RstStream {
    /// The stream being reset.
    pub stream_id: u32,
    /// Why.
    pub code: ErrorCode,
}

impl RstStream {
    /// Parses and checks a RST_STREAM frame.
    pub fn parse(head: &Head, payload: &[u8]) -> Result<RstStream, Error> {
        // §6.4: "If a RST_STREAM frame is received with a stream identifier of 0x00,
        // the recipient MUST treat this as a connection error of type PROTOCOL_ERROR."
        if head.stream_id == 0 {
            return Err(Error::conn(
                ErrorCode::ProtocolError,
                "RST_STREAM on stream 0",
            ));
        }
        // §6.4: "A RST_STREAM frame with a length other than 4 octets MUST be treated
        // as a connection error of type FRAME_SIZE_ERROR."
        let Ok(b) = <[u8; 4]>::try_from(payload) else {
            return Err(Error::conn(
                ErrorCode::FrameSizeError,
                "RST_STREAM length is not 4",
            ));
        };
        Ok(RstStream {
            stream_id: head.stream_id,
            code: ErrorCode::from_u32(u32::from_be_bytes(b)),
        })
    }

    /// Appends a RST_STREAM frame to `dst`.
    pub fn encode(stream_id: u32, code: ErrorCode, dst: &mut Vec<u8>) {
        Head {
            length: 4,
            kind: super::kind::RST_STREAM,
            flags: 0,
            stream_id,
        }
        .encode(dst);
        dst.extend_from_slice(&code.to_u32().to_be_bytes());
    }
}
