//! How a call ends: `grpc-status` and the percent-encoded `grpc-message`.
//!
//! A gRPC response is HEADERS (`:status 200`, `content-type`), zero or more
//! DATA frames carrying length-prefixed messages, and a trailing HEADERS
//! frame with `grpc-status` (+ `grpc-message`) and END_STREAM. A call that
//! fails before any message was sent may answer with one HEADERS frame that
//! holds all of it ("Trailers-Only", gRPC over HTTP/2 spec, "Responses").
//! The field lists built here are handed to `h2::Connection::send_headers` /
//! `send_trailers` by the session.

use std::borrow::Cow;
use std::fmt;

use crate::status::Code;

/// `content-type` of every gRPC response.
pub const CONTENT_TYPE: &[u8] = b"application/grpc";

/// The outcome of a call: a code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The `grpc-status` value.
    pub code: Code,
    /// The text for `grpc-message` (sent percent-encoded; empty = omitted).
    pub message: Cow<'static, str>,
}

impl Status {
    /// A status with the given code and message.
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }

    /// The successful end of a call.
    pub fn ok() -> Status {
        Status::new(Code::Ok, "")
    }

    /// The trailer fields for this status: `grpc-status` and, when there is
    /// a message, `grpc-message` (percent-encoded).
    pub fn trailer_fields(&self) -> Vec<(&'static [u8], Vec<u8>)> {
        let mut fields = vec![(
            &b"grpc-status"[..],
            self.code.as_i32().to_string().into_bytes(),
        )];
        if !self.message.is_empty() {
            fields.push((
                &b"grpc-message"[..],
                percent_encode(&self.message).into_bytes(),
            ));
        }
        fields
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Percent-encodes a `grpc-message` value.
///
/// Spec (PROTOCOL-HTTP2, "Percent-Encoded"): the message is UTF-8, and every
/// byte outside the printable ASCII range 0x20-0x7E, plus `%` itself, is sent
/// as `%XX` with upper-case hex digits.
pub fn percent_encode(message: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7E).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
    out
}

/// Decodes a percent-encoded `grpc-message`. Per the spec a receiver must
/// not fail on a bad encoding: malformed `%` sequences are kept verbatim and
/// invalid UTF-8 is replaced.
pub fn percent_decode(encoded: &[u8]) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while let Some(&b) = encoded.get(i) {
        let escaped = match (b, encoded.get(i + 1), encoded.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ascii_passes_through() {
        assert_eq!(
            percent_encode("Missing request message."),
            "Missing request message."
        );
        assert_eq!(percent_encode(" ~"), " ~");
    }

    #[test]
    fn percent_controls_and_utf8_are_escaped() {
        assert_eq!(percent_encode("100%"), "100%25");
        assert_eq!(percent_encode("a\nb\t"), "a%0Ab%09");
        assert_eq!(percent_encode("grüß"), "gr%C3%BC%C3%9F");
        assert_eq!(percent_encode("\u{7f}"), "%7F");
    }

    #[test]
    fn decode_round_trips_and_tolerates_garbage() {
        for s in ["", "plain", "100% sure", "grüß 🌍\r\n"] {
            assert_eq!(percent_decode(percent_encode(s).as_bytes()), s);
        }
        assert_eq!(percent_decode(b"%zz%4"), "%zz%4");
        assert_eq!(percent_decode(b"%FF"), "\u{FFFD}");
    }

    #[test]
    fn trailer_fields_omit_empty_message() {
        assert_eq!(
            Status::ok().trailer_fields(),
            vec![(&b"grpc-status"[..], b"0".to_vec())]
        );
        let s = Status::new(Code::ResourceExhausted, "too big: 5%");
        assert_eq!(
            s.trailer_fields(),
            vec![
                (&b"grpc-status"[..], b"8".to_vec()),
                (&b"grpc-message"[..], b"too big: 5%25".to_vec())
            ]
        );
    }
}
