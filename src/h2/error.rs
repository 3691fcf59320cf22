//! HTTP/2 error codes (RFC 9113 §7) and the two kinds of error the core can
//! raise: a connection error ends the whole connection with GOAWAY (§5.4.1),
//! a stream error ends one stream with RST_STREAM (§5.4.2). Keeping them as
//! separate types means the code cannot answer one with the other by mistake.

use std::fmt;

/// An HTTP/2 error code as carried by RST_STREAM and GOAWAY (RFC 9113 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0x0: graceful shutdown, or "stop sending" after a complete response.
    NoError,
    /// 0x1: the peer broke the protocol.
    ProtocolError,
    /// 0x2: something went wrong on our side.
    InternalError,
    /// 0x3: the peer broke flow control.
    FlowControlError,
    /// 0x4: SETTINGS were not acknowledged in time.
    SettingsTimeout,
    /// 0x5: a frame arrived on a stream that was already half-closed or closed.
    StreamClosed,
    /// 0x6: a frame had an invalid size.
    FrameSizeError,
    /// 0x7: the stream was refused before any processing; the client may retry.
    RefusedStream,
    /// 0x8: the stream is no longer needed.
    Cancel,
    /// 0x9: the HPACK state can no longer be kept in sync.
    CompressionError,
    /// 0xa: a CONNECT tunnel failed.
    ConnectError,
    /// 0xb: the peer is generating excessive load.
    EnhanceYourCalm,
    /// 0xc: the transport does not meet security requirements.
    InadequateSecurity,
    /// 0xd: HTTP/1.1 is required.
    Http11Required,
    /// A code this implementation does not know (must be treated like INTERNAL_ERROR, §7).
    Other(u32),
}

impl ErrorCode {
    /// The code from its wire value.
    pub fn from_u32(v: u32) -> ErrorCode {
        match v {
            0x0 => ErrorCode::NoError,
            0x1 => ErrorCode::ProtocolError,
            0x2 => ErrorCode::InternalError,
            0x3 => ErrorCode::FlowControlError,
            0x4 => ErrorCode::SettingsTimeout,
            0x5 => ErrorCode::StreamClosed,
            0x6 => ErrorCode::FrameSizeError,
            0x7 => ErrorCode::RefusedStream,
            0x8 => ErrorCode::Cancel,
            0x9 => ErrorCode::CompressionError,
            0xa => ErrorCode::ConnectError,
            0xb => ErrorCode::EnhanceYourCalm,
            0xc => ErrorCode::InadequateSecurity,
            0xd => ErrorCode::Http11Required,
            other => ErrorCode::Other(other),
        }
    }

    /// The wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            ErrorCode::NoError => 0x0,
            ErrorCode::ProtocolError => 0x1,
            ErrorCode::InternalError => 0x2,
            ErrorCode::FlowControlError => 0x3,
            ErrorCode::SettingsTimeout => 0x4,
            ErrorCode::StreamClosed => 0x5,
            ErrorCode::FrameSizeError => 0x6,
            ErrorCode::RefusedStream => 0x7,
            ErrorCode::Cancel => 0x8,
            ErrorCode::CompressionError => 0x9,
            ErrorCode::ConnectError => 0xa,
            ErrorCode::EnhanceYourCalm => 0xb,
            ErrorCode::InadequateSecurity => 0xc,
            ErrorCode::Http11Required => 0xd,
            ErrorCode::Other(v) => v,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ErrorCode::NoError => "NO_ERROR",
            ErrorCode::ProtocolError => "PROTOCOL_ERROR",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::FlowControlError => "FLOW_CONTROL_ERROR",
            ErrorCode::SettingsTimeout => "SETTINGS_TIMEOUT",
            ErrorCode::StreamClosed => "STREAM_CLOSED",
            ErrorCode::FrameSizeError => "FRAME_SIZE_ERROR",
            ErrorCode::RefusedStream => "REFUSED_STREAM",
            ErrorCode::Cancel => "CANCEL",
            ErrorCode::CompressionError => "COMPRESSION_ERROR",
            ErrorCode::ConnectError => "CONNECT_ERROR",
            ErrorCode::EnhanceYourCalm => "ENHANCE_YOUR_CALM",
            ErrorCode::InadequateSecurity => "INADEQUATE_SECURITY",
            ErrorCode::Http11Required => "HTTP_1_1_REQUIRED",
            ErrorCode::Other(v) => return write!(f, "error code {v:#x}"),
        };
        f.write_str(name)
    }
}

/// An error that ends the whole connection: we send GOAWAY with `code` and
/// close (RFC 9113 §5.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnError {
    /// The code sent in GOAWAY.
    pub code: ErrorCode,
    /// Why, for logs (also sent as GOAWAY debug data).
    pub reason: &'static str,
}

/// An error that ends one stream: we send RST_STREAM with `code`
/// (RFC 9113 §5.4.2). The connection stays usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamError {
    /// The stream to reset.
    pub id: u32,
    /// The code sent in RST_STREAM.
    pub code: ErrorCode,
    /// Why, for logs.
    pub reason: &'static str,
}

/// Either kind of protocol error, as returned by frame parsing and by the
/// connection's receive path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Ends the connection.
    Conn(ConnError),
    /// Ends one stream.
    Stream(StreamError),
}

impl Error {
    /// A connection error with `code`.
    pub fn conn(code: ErrorCode, reason: &'static str) -> Error {
        Error::Conn(ConnError { code, reason })
    }

    /// A stream error on stream `id` with `code`.
    pub fn stream(id: u32, code: ErrorCode, reason: &'static str) -> Error {
        Error::Stream(StreamError { id, code, reason })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Conn(e) => write!(f, "connection error {}: {}", e.code, e.reason),
            Error::Stream(e) => write!(f, "stream {} error {}: {}", e.id, e.code, e.reason),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for v in 0..=0xe {
            assert_eq!(ErrorCode::from_u32(v).to_u32(), v);
        }
        assert_eq!(ErrorCode::from_u32(0xb), ErrorCode::EnhanceYourCalm);
        assert_eq!(ErrorCode::from_u32(0x77), ErrorCode::Other(0x77));
        assert_eq!(ErrorCode::Other(0x77).to_string(), "error code 0x77");
        assert_eq!(ErrorCode::RefusedStream.to_string(), "REFUSED_STREAM");
    }
}
