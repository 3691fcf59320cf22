//! GOAWAY frames (RFC 9113 §6.8).

use super::Head;
use crate::h2::error::{Error, ErrorCode};

/// A parsed GOAWAY frame (debug data is ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoAway {
    /// The highest stream the peer may have processed.
    pub last_stream_id: u32,
    /// Why the peer is going away.
    pub code: ErrorCode,
}

impl GoAway {
    /// Parses and checks a GOAWAY frame.
    pub fn parse(head: &Head, payload: &[u8]) -> Result<GoAway, Error> {
        // §6.8: "An endpoint MUST treat a GOAWAY frame with a stream identifier other
        // than 0x00 as a connection error of type PROTOCOL_ERROR."
        if head.stream_id != 0 {
            return Err(Error::conn(ErrorCode::ProtocolError, "GOAWAY on a stream"));
        }
        // §6.8: the payload holds at least the last stream id and the error code
        // (8 octets); a shorter one is a FRAME_SIZE_ERROR (§4.2).
        let Some((b, _debug)) = payload.split_first_chunk::<8>() else {
            return Err(Error::conn(
                ErrorCode::FrameSizeError,
                "GOAWAY shorter than 8",
            ));
        };
        Ok(GoAway {
            last_stream_id: u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff,
            code: ErrorCode::from_u32(u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
        })
    }

    /// Appends a GOAWAY frame with `debug` data to `dst`.
    pub fn encode(last_stream_id: u32, code: ErrorCode, debug: &[u8], dst: &mut Vec<u8>) {
        let length = 8 + debug.len() as u32;
        Head {
            length,
            kind: super::kind::GOAWAY,
            flags: 0,
            stream_id: 0,
        }
        .encode(dst);
        dst.extend_from_slice(&(last_stream_id & 0x7fff_ffff).to_be_bytes());
        dst.extend_from_slice(&code.to_u32().to_be_bytes());
        dst.extend_from_slice(debug);
    }
}
