//! The bytes written to a connection refused by the connection cap.
//!
//! Both flavours send the same thing to a client that connects while
//! `max_connections` connections are already open: the server's connection
//! preface (a SETTINGS frame, RFC 9113 §3.4) followed by GOAWAY with
//! last-stream-id 0 and REFUSED_STREAM (§6.8), then they close the socket.
//! Last-stream-id 0 tells the client that no stream was processed, so a
//! well-behaved client may retry elsewhere or later (§8.7). The frames are a
//! constant: refusing costs no encoder and no allocation.

/// Debug text carried in the GOAWAY frame, readable in client error messages.
pub const REASON: &str = "connection limit reached";

/// HTTP/2 error code REFUSED_STREAM (RFC 9113 §7).
pub const REFUSED_STREAM: u32 = 0x7;

/// SETTINGS (one setting, MAX_CONCURRENT_STREAMS = 0) + GOAWAY(0, REFUSED_STREAM, [`REASON`]).
///
/// Frame header layout (§4.1): length (24 bits), type (8), flags (8),
/// reserved bit + stream id (31).
#[rustfmt::skip]
pub const REFUSAL: [u8; 56] = [
    // SETTINGS: length 6, type 0x4, flags 0, stream 0.
    0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
    // SETTINGS_MAX_CONCURRENT_STREAMS (0x3) = 0: no stream will be accepted.
    0x00, 0x03, 0x00, 0x00, 0x00, 0x00,
    // GOAWAY: length 8 + 24, type 0x7, flags 0, stream 0.
    0x00, 0x00, 0x20, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00,
    // Last-Stream-ID 0: nothing was processed.
    0x00, 0x00, 0x00, 0x00,
    // Error code REFUSED_STREAM.
    0x00, 0x00, 0x00, 0x07,
    // Debug data: "connection limit reached".
    b'c', b'o', b'n', b'n', b'e', b'c', b't', b'i', b'o', b'n', b' ', b'l',
    b'i', b'm', b'i', b't', b' ', b'r', b'e', b'a', b'c', b'h', b'e', b'd',
];

#[cfg(test)]
mod tests {
    use super::*;

    /// One decoded frame: (type, flags, stream id, payload).
    fn frame(bytes: &[u8]) -> ((u8, u8, u32, &[u8]), &[u8]) {
        let (head, rest) = bytes.split_at(9);
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
        let (payload, rest) = rest.split_at(len);
        ((head[3], head[4], stream, payload), rest)
    }

    fn be32(b: &[u8]) -> u32 {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    #[test]
    fn decodes_as_settings_then_goaway() {
        let ((kind, flags, stream, settings), rest) = frame(&REFUSAL);
        assert_eq!(
            (kind, flags, stream),
            (0x4, 0, 0),
            "SETTINGS on stream 0, no ACK"
        );
        assert_eq!(settings.len() % 6, 0, "settings are 6-byte entries");
        assert_eq!(u16::from_be_bytes([settings[0], settings[1]]), 0x3);
        assert_eq!(be32(&settings[2..6]), 0, "MAX_CONCURRENT_STREAMS = 0");

        let ((kind, flags, stream, goaway), rest) = frame(rest);
        assert_eq!((kind, flags, stream), (0x7, 0, 0), "GOAWAY on stream 0");
        assert_eq!(be32(&goaway[0..4]) & 0x7fff_ffff, 0, "last stream id");
        assert_eq!(goaway[0] & 0x80, 0, "reserved bit clear");
        assert_eq!(be32(&goaway[4..8]), REFUSED_STREAM);
        assert_eq!(&goaway[8..], REASON.as_bytes());
        assert!(rest.is_empty(), "nothing after GOAWAY");
    }
}
