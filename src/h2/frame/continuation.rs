//! CONTINUATION frames (RFC 9113 §6.10).

use super::Head;
use crate::h2::error::{Error, ErrorCode};

/// END_HEADERS flag.
pub const END_HEADERS: u8 = 0x4;

/// A parsed CONTINUATION frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Continuation<'a> {
    /// The stream.
    pub stream_id: u32,
    /// The field block fragment.
    pub fragment: &'a [u8],
    /// END_HEADERS was set: the field block is complete.
    pub end_headers: bool,
}

impl<'a> Continuation<'a> {
    /// Parses and checks a CONTINUATION frame.
    pub fn parse(head: &Head, payload: &'a [u8]) -> Result<Continuation<'a>, Error> {
        // §6.10: "If a CONTINUATION frame is received with a Stream Identifier field
        // of 0x00, the recipient MUST respond with a connection error of type
        // PROTOCOL_ERROR."
        if head.stream_id == 0 {
            return Err(Error::conn(
                ErrorCode::ProtocolError,
                "CONTINUATION on stream 0",
            ));
        }
        Ok(Continuation {
            stream_id: head.stream_id,
            fragment: payload,
            end_headers: head.has(END_HEADERS),
        })
    }
}
