//! DATA frames (RFC 9113 §6.1).

use super::{strip_padding, Head};
use crate::h2::error::{Error, ErrorCode};

/// END_STREAM flag.
pub const END_STREAM: u8 = 0x1;
/// PADDED flag.
pub const PADDED: u8 = 0x8;

/// A parsed DATA frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Data<'a> {
    /// The stream.
    pub stream_id: u32,
    /// The payload without padding.
    pub data: &'a [u8],
    /// Whole frame payload length (padding included), which is what flow control counts.
    pub flow_len: u32,
    /// END_STREAM was set.
    pub end_stream: bool,
}

impl<'a> Data<'a> {
    /// Parses and checks a DATA frame.
    pub fn parse(head: &Head, payload: &'a [u8]) -> Result<Data<'a>, Error> {
        // §6.1: "If a DATA frame is received whose Stream Identifier field is 0x00,
        // the recipient MUST respond with a connection error of type PROTOCOL_ERROR."
        if head.stream_id == 0 {
            return Err(Error::conn(ErrorCode::ProtocolError, "DATA on stream 0"));
        }
        let data = strip_padding(head, PADDED, payload)?;
        Ok(Data {
            stream_id: head.stream_id,
            data,
            flow_len: head.length,
            end_stream: head.has(END_STREAM),
        })
    }

    /// Appends a DATA frame (no padding) to `dst`.
    pub fn encode(stream_id: u32, data: &[u8], end_stream: bool, dst: &mut Vec<u8>) {
        let flags = if end_stream { END_STREAM } else { 0 };
        let len = data.len() as u32;
        Head {
            length: len,
            kind: super::kind::DATA,
            flags,
            stream_id,
        }
        .encode(dst);
        dst.extend_from_slice(data);
    }
}
