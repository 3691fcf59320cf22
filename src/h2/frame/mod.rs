//! The HTTP/2 frame codec (RFC 9113 §4, §6): one file per frame type.
//!
//! Each `parse` takes a decoded [`Head`] and exactly its payload, and does the
//! checks that need nothing but the frame itself (lengths, stream 0 rules,
//! padding, value ranges); the RFC sentence sits beside each check. Rules that
//! depend on connection or stream state live in `crate::h2::conn`.

pub mod continuation;
pub mod data;
pub mod goaway;
pub mod head;
pub mod headers;
pub mod ping;
pub mod priority;
pub mod push_promise;
pub mod rst_stream;
pub mod settings;
pub mod window_update;

pub use continuation::Continuation;
pub use data::Data;
pub use goaway::GoAway;
pub use head::{Head, HEAD_LEN};
pub use headers::Headers;
pub use ping::Ping;
pub use priority::Priority;
pub use rst_stream::RstStream;
pub use settings::Settings;
pub use window_update::WindowUpdate;

use crate::h2::error::{Error, ErrorCode};

/// Frame type codes (§6).
pub mod kind {
    /// DATA (§6.1).
    pub const DATA: u8 = 0x0;
    /// HEADERS (§6.2).
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY (§6.3).
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM (§6.4).
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS (§6.5).
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE (§6.6).
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING (§6.7).
    pub const PING: u8 = 0x6;
    /// GOAWAY (§6.8).
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE (§6.9).
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION (§6.10).
    pub const CONTINUATION: u8 = 0x9;
}

/// One parsed frame, borrowing its payload from the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// DATA.
    Data(Data<'a>),
    /// HEADERS.
    Headers(Headers<'a>),
    /// PRIORITY (checked, then ignored).
    Priority(Priority),
    /// RST_STREAM.
    RstStream(RstStream),
    /// SETTINGS.
    Settings(Settings<'a>),
    /// PING.
    Ping(Ping),
    /// GOAWAY.
    GoAway(GoAway),
    /// WINDOW_UPDATE.
    WindowUpdate(WindowUpdate),
    /// CONTINUATION.
    Continuation(Continuation<'a>),
    /// A frame type we do not know, on this stream.
    Unknown {
        /// The stream it was sent on.
        stream_id: u32,
    },
}

impl<'a> Frame<'a> {
    /// Parses one frame whose payload is exactly `payload` (`head.length` bytes).
    pub fn parse(head: &Head, payload: &'a [u8]) -> Result<Frame<'a>, Error> {
        Ok(match head.kind {
            kind::DATA => Frame::Data(Data::parse(head, payload)?),
            kind::HEADERS => Frame::Headers(Headers::parse(head, payload)?),
            kind::PRIORITY => Frame::Priority(Priority::parse(head, payload)?),
            kind::RST_STREAM => Frame::RstStream(RstStream::parse(head, payload)?),
            kind::SETTINGS => Frame::Settings(Settings::parse(head, payload)?),
            kind::PUSH_PROMISE => return Err(push_promise::reject(head)),
            kind::PING => Frame::Ping(Ping::parse(head, payload)?),
            kind::GOAWAY => Frame::GoAway(GoAway::parse(head, payload)?),
            kind::WINDOW_UPDATE => Frame::WindowUpdate(WindowUpdate::parse(head, payload)?),
            kind::CONTINUATION => Frame::Continuation(Continuation::parse(head, payload)?),
            // §4.1: "Implementations MUST ignore and discard frames of unknown types."
            _ => Frame::Unknown {
                stream_id: head.stream_id,
            },
        })
    }
}

/// Removes the Pad Length byte and the padding of a DATA or HEADERS payload
/// when `padded_flag` is set in `head`.
fn strip_padding<'a>(head: &Head, padded_flag: u8, payload: &'a [u8]) -> Result<&'a [u8], Error> {
    if !head.has(padded_flag) {
        return Ok(payload);
    }
    let Some((&pad, rest)) = payload.split_first() else {
        // A PADDED frame too short to hold the Pad Length field is malformed (§4.2).
        return Err(Error::conn(
            ErrorCode::FrameSizeError,
            "PADDED frame without Pad Length",
        ));
    };
    // §6.1/§6.2: "If the length of the padding is the length of the frame payload or
    // greater, the recipient MUST treat this as a connection error of type
    // PROTOCOL_ERROR."
    let keep = rest.len().checked_sub(usize::from(pad)).ok_or(Error::conn(
        ErrorCode::ProtocolError,
        "padding longer than the payload",
    ))?;
    Ok(rest.get(..keep).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(kind: u8, flags: u8, stream_id: u32, len: usize) -> Head {
        Head {
            length: len as u32,
            kind,
            flags,
            stream_id,
        }
    }

    fn conn_code(r: Result<Frame<'_>, Error>) -> ErrorCode {
        match r {
            Err(Error::Conn(e)) => e.code,
            other => panic!("expected a connection error, got {other:?}"),
        }
    }

    fn stream_code(r: Result<Frame<'_>, Error>) -> (u32, ErrorCode) {
        match r {
            Err(Error::Stream(e)) => (e.id, e.code),
            other => panic!("expected a stream error, got {other:?}"),
        }
    }

    #[test]
    fn data_padding() {
        let p = [2, b'h', b'i', 0, 0];
        let f = Frame::parse(&head(kind::DATA, data::PADDED | data::END_STREAM, 1, 5), &p);
        assert_eq!(
            f,
            Ok(Frame::Data(Data {
                stream_id: 1,
                data: b"hi",
                flow_len: 5,
                end_stream: true
            }))
        );
        // Pad length equal to the remaining payload is allowed (empty data)...
        let p = [2, 0, 0];
        assert!(
            matches!(Frame::parse(&head(kind::DATA, data::PADDED, 1, 3), &p), Ok(Frame::Data(d)) if d.data.is_empty())
        );
        // ...but longer is not: "length of the frame payload or greater".
        let p = [3, 0, 0];
        assert_eq!(
            conn_code(Frame::parse(&head(kind::DATA, data::PADDED, 1, 3), &p)),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::DATA, data::PADDED, 1, 0), &[])),
            ErrorCode::FrameSizeError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::DATA, 0, 0, 0), &[])),
            ErrorCode::ProtocolError
        );
    }

    #[test]
    fn headers_priority_and_padding() {
        // padded + priority: pad len 1, dependency 3, weight 0, fragment "ab", 1 pad byte
        let p = [1, 0, 0, 0, 3, 0, b'a', b'b', 0];
        let f = Frame::parse(
            &head(
                kind::HEADERS,
                headers::PADDED | headers::PRIORITY | headers::END_HEADERS,
                1,
                9,
            ),
            &p,
        );
        assert_eq!(
            f,
            Ok(Frame::Headers(Headers {
                stream_id: 1,
                fragment: b"ab",
                end_stream: false,
                end_headers: true,
                self_dependent: false,
            }))
        );
        let p = [0, 0, 0, 5, 0];
        // Self-dependency is flagged, not failed: the block must still be decoded.
        assert!(matches!(
            Frame::parse(&head(kind::HEADERS, headers::PRIORITY, 5, 5), &p),
            Ok(Frame::Headers(h)) if h.self_dependent
        ));
        assert_eq!(
            conn_code(Frame::parse(
                &head(kind::HEADERS, headers::PRIORITY, 5, 2),
                &[0, 0]
            )),
            ErrorCode::FrameSizeError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::HEADERS, 0, 0, 0), &[])),
            ErrorCode::ProtocolError
        );
    }

    #[test]
    fn fixed_lengths() {
        assert_eq!(
            stream_code(Frame::parse(&head(kind::PRIORITY, 0, 3, 4), &[0; 4])),
            (3, ErrorCode::FrameSizeError)
        );
        assert_eq!(
            stream_code(Frame::parse(
                &head(kind::PRIORITY, 0, 3, 5),
                &[0, 0, 0, 3, 0]
            )),
            (3, ErrorCode::ProtocolError)
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::RST_STREAM, 0, 3, 3), &[0; 3])),
            ErrorCode::FrameSizeError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::PING, 0, 0, 7), &[0; 7])),
            ErrorCode::FrameSizeError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::WINDOW_UPDATE, 0, 0, 5), &[0; 5])),
            ErrorCode::FrameSizeError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::GOAWAY, 0, 0, 7), &[0; 7])),
            ErrorCode::FrameSizeError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::SETTINGS, 0, 0, 5), &[0; 5])),
            ErrorCode::FrameSizeError
        );
        assert_eq!(
            conn_code(Frame::parse(
                &head(kind::SETTINGS, settings::ACK, 0, 6),
                &[0; 6]
            )),
            ErrorCode::FrameSizeError
        );
    }

    #[test]
    fn stream_zero_rules() {
        assert_eq!(
            conn_code(Frame::parse(&head(kind::PRIORITY, 0, 0, 5), &[0; 5])),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::RST_STREAM, 0, 0, 4), &[0; 4])),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::CONTINUATION, 0, 0, 0), &[])),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::SETTINGS, 0, 1, 0), &[])),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::PING, 0, 1, 8), &[0; 8])),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::GOAWAY, 0, 1, 8), &[0; 8])),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            conn_code(Frame::parse(&head(kind::PUSH_PROMISE, 0, 1, 4), &[0; 4])),
            ErrorCode::ProtocolError
        );
    }

    #[test]
    fn window_update_zero() {
        assert_eq!(
            conn_code(Frame::parse(&head(kind::WINDOW_UPDATE, 0, 0, 4), &[0; 4])),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            stream_code(Frame::parse(
                &head(kind::WINDOW_UPDATE, 0, 9, 4),
                &[0x80, 0, 0, 0]
            )),
            (9, ErrorCode::ProtocolError)
        );
        assert_eq!(
            Frame::parse(&head(kind::WINDOW_UPDATE, 0, 9, 4), &[0x80, 0, 0, 7]),
            Ok(Frame::WindowUpdate(WindowUpdate {
                stream_id: 9,
                increment: 7
            }))
        );
    }

    #[test]
    fn settings_values() {
        let frame = |id: u16, v: u32| {
            let mut p = id.to_be_bytes().to_vec();
            p.extend_from_slice(&v.to_be_bytes());
            p
        };
        let h = head(kind::SETTINGS, 0, 0, 6);
        assert_eq!(
            conn_code(Frame::parse(&h, &frame(settings::ENABLE_PUSH, 2))),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            conn_code(Frame::parse(
                &h,
                &frame(settings::INITIAL_WINDOW_SIZE, 1 << 31)
            )),
            ErrorCode::FlowControlError
        );
        assert_eq!(
            conn_code(Frame::parse(&h, &frame(settings::MAX_FRAME_SIZE, 16_383))),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            conn_code(Frame::parse(&h, &frame(settings::MAX_FRAME_SIZE, 1 << 24))),
            ErrorCode::ProtocolError
        );
        let p = frame(0x99, 12345);
        match Frame::parse(&h, &p) {
            Ok(Frame::Settings(s)) => assert_eq!(s.iter().collect::<Vec<_>>(), [(0x99, 12345)]),
            other => panic!("{other:?}"),
        }
        let mut out = Vec::new();
        Settings::encode(&[(settings::MAX_FRAME_SIZE, 16_384)], &mut out);
        assert_eq!(out, [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0x40, 0]);
    }

    #[test]
    fn unknown_type_ignored_and_encoders() {
        assert_eq!(
            Frame::parse(&head(0xfa, 0xff, 3, 2), &[1, 2]),
            Ok(Frame::Unknown { stream_id: 3 })
        );
        let mut out = Vec::new();
        Headers::encode(3, b"abcde", true, 2, &mut out);
        assert_eq!(
            out,
            [
                0, 0, 2, 1, 1, 0, 0, 0, 3, b'a', b'b', // HEADERS END_STREAM
                0, 0, 2, 9, 0, 0, 0, 0, 3, b'c', b'd', // CONTINUATION
                0, 0, 1, 9, 4, 0, 0, 0, 3, b'e', // CONTINUATION END_HEADERS
            ]
        );
        out.clear();
        GoAway::encode(5, ErrorCode::EnhanceYourCalm, b"x", &mut out);
        let h = Head::parse(&out).unwrap();
        let Ok(Frame::GoAway(g)) = Frame::parse(&h, &out[9..]) else {
            panic!()
        };
        assert_eq!(
            g,
            GoAway {
                last_stream_id: 5,
                code: ErrorCode::EnhanceYourCalm
            }
        );
    }
}
