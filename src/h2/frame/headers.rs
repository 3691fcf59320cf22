//! HEADERS frames (RFC 9113 §6.2), including the deprecated priority fields.

use super::priority::Priority;
use super::{strip_padding, Head};
use crate::h2::error::{Error, ErrorCode};

/// END_STREAM flag.
pub const END_STREAM: u8 = 0x1;
/// END_HEADERS flag.
pub const END_HEADERS: u8 = 0x4;
/// PADDED flag.
pub const PADDED: u8 = 0x8;
/// PRIORITY flag.
pub const PRIORITY: u8 = 0x20;

/// A parsed HEADERS frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Headers<'a> {
    /// The stream.
    pub stream_id: u32,
    /// The field block fragment (padding and priority fields removed).
    pub fragment: &'a [u8],
    /// END_STREAM was set.
    pub end_stream: bool,
    /// END_HEADERS was set: no CONTINUATION follows.
    pub end_headers: bool,
    /// The priority fields name the stream itself: a stream error of type
    /// PROTOCOL_ERROR (§5.3.1), raised once the block has been decoded.
    pub self_dependent: bool,
}

impl<'a> Headers<'a> {
    /// Parses and checks a HEADERS frame.
    pub fn parse(head: &Head, payload: &'a [u8]) -> Result<Headers<'a>, Error> {
        // §6.2: "If a HEADERS frame is received whose Stream Identifier field is 0x00,
        // the recipient MUST respond with a connection error of type PROTOCOL_ERROR."
        if head.stream_id == 0 {
            return Err(Error::conn(ErrorCode::ProtocolError, "HEADERS on stream 0"));
        }
        let mut fragment = strip_padding(head, PADDED, payload)?;
        let mut self_dependent = false;
        if head.has(PRIORITY) {
            let Some((prio, rest)) = fragment.split_first_chunk::<5>() else {
                // §6.2: the priority fields are part of the payload; a payload too short
                // to hold them is a malformed frame (§4.2 FRAME_SIZE_ERROR).
                return Err(Error::conn(
                    ErrorCode::FrameSizeError,
                    "HEADERS too short for priority",
                ));
            };
            // The self-dependency stream error (§5.3.1) is reported by the caller after
            // the block is decoded: the HPACK state must stay in sync.
            self_dependent = Priority::from_fields(head.stream_id, prio).check().is_err();
            fragment = rest;
        }
        Ok(Headers {
            stream_id: head.stream_id,
            fragment,
            end_stream: head.has(END_STREAM),
            end_headers: head.has(END_HEADERS),
            self_dependent,
        })
    }

    /// Appends a header block for `stream_id` as HEADERS + CONTINUATION frames of
    /// at most `max_frame` payload bytes each.
    pub fn encode(
        stream_id: u32,
        block: &[u8],
        end_stream: bool,
        max_frame: usize,
        dst: &mut Vec<u8>,
    ) {
        let max_frame = max_frame.max(1);
        let mut chunks = block.chunks(max_frame);
        let first = chunks.next().unwrap_or(&[]);
        let mut rest = chunks.peekable();
        let mut flags = if end_stream { END_STREAM } else { 0 };
        if rest.peek().is_none() {
            flags |= END_HEADERS;
        }
        Head {
            length: first.len() as u32,
            kind: super::kind::HEADERS,
            flags,
            stream_id,
        }
        .encode(dst);
        dst.extend_from_slice(first);
        while let Some(chunk) = rest.next() {
            let flags = if rest.peek().is_none() {
                END_HEADERS
            } else {
                0
            };
            Head {
                length: chunk.len() as u32,
                kind: super::kind::CONTINUATION,
                flags,
                stream_id,
            }
            .encode(dst);
            dst.extend_from_slice(chunk);
        }
    }
}
