//! SETTINGS frames (RFC 9113 §6.5): the codec and the per-value checks.
//! What the values mean for the connection lives in `crate::h2::settings`.

use super::Head;
use crate::h2::error::{Error, ErrorCode};

/// ACK flag.
pub const ACK: u8 = 0x1;

/// SETTINGS_HEADER_TABLE_SIZE.
pub const HEADER_TABLE_SIZE: u16 = 0x1;
/// SETTINGS_ENABLE_PUSH.
pub const ENABLE_PUSH: u16 = 0x2;
/// SETTINGS_MAX_CONCURRENT_STREAMS.
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// SETTINGS_INITIAL_WINDOW_SIZE.
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
/// SETTINGS_MAX_FRAME_SIZE.
pub const MAX_FRAME_SIZE: u16 = 0x5;
/// SETTINGS_MAX_HEADER_LIST_SIZE.
pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// Largest flow-control window (§6.9.1: 2^31-1).
pub const MAX_WINDOW: u32 = 0x7fff_ffff;
/// Smallest allowed SETTINGS_MAX_FRAME_SIZE (§6.5.2).
pub const MIN_MAX_FRAME_SIZE: u32 = 16_384;
/// Largest allowed SETTINGS_MAX_FRAME_SIZE (§6.5.2: 2^24-1).
pub const MAX_MAX_FRAME_SIZE: u32 = 0x00ff_ffff;

/// A parsed, checked SETTINGS frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings<'a> {
    /// ACK was set (then there are no parameters).
    pub ack: bool,
    params: &'a [u8],
}

impl<'a> Settings<'a> {
    /// Parses a SETTINGS frame and checks every value.
    pub fn parse(head: &Head, payload: &'a [u8]) -> Result<Settings<'a>, Error> {
        // §6.5: "If an endpoint receives a SETTINGS frame whose Stream Identifier field
        // is anything other than 0x00, the endpoint MUST respond with a connection error
        // of type PROTOCOL_ERROR."
        if head.stream_id != 0 {
            return Err(Error::conn(
                ErrorCode::ProtocolError,
                "SETTINGS on a stream",
            ));
        }
        let ack = head.has(ACK);
        // §6.5: "Receipt of a SETTINGS frame with the ACK flag set and a length field
        // value other than 0 MUST be treated as a connection error of type
        // FRAME_SIZE_ERROR."
        if ack && !payload.is_empty() {
            return Err(Error::conn(
                ErrorCode::FrameSizeError,
                "SETTINGS ACK with a payload",
            ));
        }
        // §6.5: "A SETTINGS frame with a length other than a multiple of 6 octets MUST
        // be treated as a connection error of type FRAME_SIZE_ERROR."
        if !payload.len().is_multiple_of(6) {
            return Err(Error::conn(
                ErrorCode::FrameSizeError,
                "SETTINGS length not a multiple of 6",
            ));
        }
        let s = Settings {
            ack,
            params: payload,
        };
        for (id, value) in s.iter() {
            check(id, value)?;
        }
        Ok(s)
    }

    /// The (identifier, value) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, u32)> + 'a {
        self.params.chunks_exact(6).map(|c| {
            let id = u16::from_be_bytes([c[0], c[1]]);
            let value = u32::from_be_bytes([c[2], c[3], c[4], c[5]]);
            (id, value)
        })
    }

    /// Appends a SETTINGS frame holding `params` to `dst`.
    pub fn encode(params: &[(u16, u32)], dst: &mut Vec<u8>) {
        let length = (params.len() * 6) as u32;
        Head {
            length,
            kind: super::kind::SETTINGS,
            flags: 0,
            stream_id: 0,
        }
        .encode(dst);
        for (id, value) in params {
            dst.extend_from_slice(&id.to_be_bytes());
            dst.extend_from_slice(&value.to_be_bytes());
        }
    }

    /// Appends a SETTINGS ACK to `dst`.
    pub fn encode_ack(dst: &mut Vec<u8>) {
        Head {
            length: 0,
            kind: super::kind::SETTINGS,
            flags: ACK,
            stream_id: 0,
        }
        .encode(dst);
    }
}

/// The per-value rules of §6.5.2.
fn check(id: u16, value: u32) -> Result<(), Error> {
    match id {
        // §6.5.2: "Any value other than 0 or 1 MUST be treated as a connection error
        // of type PROTOCOL_ERROR." (SETTINGS_ENABLE_PUSH)
        ENABLE_PUSH if value > 1 => Err(Error::conn(
            ErrorCode::ProtocolError,
            "ENABLE_PUSH not 0 or 1",
        )),
        // §6.5.2: "Values above the maximum flow-control window size of 2^31-1 MUST be
        // treated as a connection error of type FLOW_CONTROL_ERROR."
        INITIAL_WINDOW_SIZE if value > MAX_WINDOW => Err(Error::conn(
            ErrorCode::FlowControlError,
            "INITIAL_WINDOW_SIZE above 2^31-1",
        )),
        // §6.5.2: "Values outside this range [2^14, 2^24-1] MUST be treated as a
        // connection error of type PROTOCOL_ERROR." (SETTINGS_MAX_FRAME_SIZE)
        MAX_FRAME_SIZE if !(MIN_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) => Err(
            Error::conn(ErrorCode::ProtocolError, "MAX_FRAME_SIZE out of range"),
        ),
        // §6.5.2: "An endpoint that receives a SETTINGS frame with any unknown or
        // unsupported identifier MUST ignore that setting."
        _ => Ok(()),
    }
}
