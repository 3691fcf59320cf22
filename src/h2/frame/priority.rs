//! PRIORITY frames (RFC 9113 §6.3). Priority signalling is deprecated in
//! RFC 9113 and we ignore it, but the frame is still checked.

use super::Head;
use crate::h2::error::{Error, ErrorCode};

/// Length of a PRIORITY payload (and of the priority fields in HEADERS).
pub const LEN: usize = 5;

/// A parsed priority signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    /// The stream the signal is for.
    pub stream_id: u32,
    /// The stream it depends on.
    pub dependency: u32,
}

impl Priority {
    /// Reads the 5 priority bytes (E bit + dependency + weight) for `stream_id`.
    pub fn from_fields(stream_id: u32, b: &[u8; LEN]) -> Priority {
        let dependency = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff;
        Priority {
            stream_id,
            dependency,
        }
    }

    /// Parses and checks a PRIORITY frame.
    pub fn parse(head: &Head, payload: &[u8]) -> Result<Priority, Error> {
        // §6.3: "If a PRIORITY frame is received with a stream identifier of 0x00,
        // the recipient MUST respond with a connection error of type PROTOCOL_ERROR."
        if head.stream_id == 0 {
            return Err(Error::conn(
                ErrorCode::ProtocolError,
                "PRIORITY on stream 0",
            ));
        }
        // §6.3: "A PRIORITY frame with a length other than 5 octets MUST be treated as
        // a stream error of type FRAME_SIZE_ERROR."
        let Ok(b) = <&[u8; LEN]>::try_from(payload) else {
            return Err(Error::stream(
                head.stream_id,
                ErrorCode::FrameSizeError,
                "PRIORITY length is not 5",
            ));
        };
        let p = Priority::from_fields(head.stream_id, b);
        p.check()?;
        Ok(p)
    }

    /// The self-dependency check shared by PRIORITY and HEADERS.
    pub fn check(self) -> Result<(), Error> {
        // §5.3.1 (RFC 7540, kept by RFC 9113 §6.3 parsing): "A stream cannot depend on
        // itself. An endpoint MUST treat this as a stream error of type PROTOCOL_ERROR."
        if self.dependency == self.stream_id {
            return Err(Error::stream(
                self.stream_id,
                ErrorCode::ProtocolError,
                "stream depends on itself",
            ));
        }
        Ok(())
    }
}
