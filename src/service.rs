//! The Echo behaviour, shared by both server flavours.
//!
//! Everything a flavour must agree on lives here: the reply text of every
//! Echo RPC, and the status each kind of bad request gets, so the same input
//! yields the same answer whichever server answers. The flavours only adapt
//! these functions to their service APIs.
//!
//! The optional services keep their logic in submodules the same way:
//! [`interop`] (grpc's interop TestService, feature `interop`) and
//! [`telemetry`] (board readings, feature `telemetry`).

#[cfg(feature = "interop")]
pub mod interop;
#[cfg(feature = "telemetry")]
pub mod telemetry;

use std::time::Duration;

use crate::proto::echo::{EchoManyRequest, EchoReply, EchoRequest};
use crate::status::Code;

/// The prefix of every reply: the reply to `m` is `You said: m`.
pub const REPLY_PREFIX: &str = "You said: ";

/// Answers one `echo.Echo/Reply` call.
pub fn reply(request: &EchoRequest) -> EchoReply {
    let mut message = String::with_capacity(REPLY_PREFIX.len() + request.message.len());
    message.push_str(REPLY_PREFIX);
    message.push_str(&request.message);
    EchoReply { message }
}

/// Replies `echo.Echo/ReplyMany` sends when the request's `count` is 0.
pub const DEFAULT_MANY: u32 = 3;
/// The most replies one `ReplyMany` call may ask for.
pub const MAX_MANY: u32 = 1000;
/// The longest `interval_ms` one `ReplyMany` call may ask for.
pub const MAX_INTERVAL_MS: u32 = 60_000;

/// What one `echo.Echo/ReplyMany` call will send: how many replies, and the
/// pause before each reply after the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManyPlan {
    /// Number of replies (1..=[`MAX_MANY`]).
    pub count: u32,
    /// Pause between replies.
    pub interval: Duration,
}

/// Checks a `ReplyMany` request: `count` 0 means [`DEFAULT_MANY`]; a count
/// over [`MAX_MANY`] or an interval over [`MAX_INTERVAL_MS`] is
/// `INVALID_ARGUMENT` with the reason.
pub fn many_plan(request: &EchoManyRequest) -> Result<ManyPlan, (Code, String)> {
    let count = match request.count {
        0 => DEFAULT_MANY,
        n if n > MAX_MANY => {
            return Err((
                Code::InvalidArgument,
                format!("count {n} is over the limit of {MAX_MANY}"),
            ))
        }
        n => n,
    };
    if request.interval_ms > MAX_INTERVAL_MS {
        return Err((
            Code::InvalidArgument,
            format!(
                "interval_ms {} is over the limit of {MAX_INTERVAL_MS}",
                request.interval_ms
            ),
        ));
    }
    Ok(ManyPlan {
        count,
        interval: Duration::from_millis(u64::from(request.interval_ms)),
    })
}

/// The `index`-th (1-based) of `count` `ReplyMany` replies:
/// `You said: m (index/count)`.
pub fn many_reply(message: &str, index: u32, count: u32) -> EchoReply {
    EchoReply {
        message: format!("{REPLY_PREFIX}{message} ({index}/{count})"),
    }
}

/// Builds the one `echo.Echo/ReplyJoined` reply from the request messages
/// as they arrive: `You said: m1 m2 ...` (single spaces).
#[derive(Debug)]
pub struct Joiner {
    text: String,
    first: bool,
}

impl Default for Joiner {
    fn default() -> Joiner {
        Joiner {
            text: String::from(REPLY_PREFIX),
            first: true,
        }
    }
}

impl Joiner {
    /// Adds one request message.
    pub fn push(&mut self, request: &EchoRequest) {
        if !self.first {
            self.text.push(' ');
        }
        self.first = false;
        self.text.push_str(&request.message);
    }

    /// Bytes of reply text so far (to hold it under the message size limit).
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Whether no message was added yet.
    pub fn is_empty(&self) -> bool {
        self.first
    }

    /// The reply.
    pub fn finish(self) -> EchoReply {
        EchoReply { message: self.text }
    }
}

/// How much larger than the request bound a reply may be: the 10 bytes of
/// "You said: " plus at most one more length-prefix byte, rounded up. The
/// send limit is `max_message_size` plus this.
pub const REPLY_SLACK: usize = 16;

/// Status for a request body that is not a valid `EchoRequest` (bad
/// protobuf, or invalid UTF-8 in `message`). Matches what tonic answers.
pub const DECODE_ERROR: Code = Code::Internal;

/// Status for a request message larger than the configured maximum.
pub const TOO_LARGE: Code = Code::ResourceExhausted;

/// Status for a method or service the server does not serve.
pub const UNKNOWN_METHOD: Code = Code::Unimplemented;

/// Status for a second request message on a method that takes one (unary
/// or server streaming): grpc's `statuscodes.md` names UNIMPLEMENTED for a
/// request cardinality violation.
pub const CARDINALITY: Code = Code::Unimplemented;

/// The message that goes with [`CARDINALITY`], the same in both flavours.
pub const CARDINALITY_MESSAGE: &str = "more than one request message for a method that takes one";

/// Status for a call whose `grpc-timeout` expired before the reply.
pub const DEADLINE: Code = Code::DeadlineExceeded;

/// Body of the HTTP 405 answer to a non-POST request (a browser, `curl`),
/// sent with `allow: POST` (RFC 9110 §15.5.6).
pub const NOT_POST_BODY: &str = "this is a gRPC server; use a gRPC client (method must be POST)\n";
/// Body of the HTTP 415 answer to a request that is not `application/grpc`.
pub const NOT_GRPC_BODY: &str =
    "this is a gRPC server; use a gRPC client (content-type must be application/grpc)\n";

/// Whether a request field value is malformed (RFC 9113 §8.2.1): it contains
/// NUL, LF or CR, or starts or ends with a space or tab.
pub fn malformed_field_value(value: &[u8]) -> bool {
    value.iter().any(|&b| b == 0 || b == b'\n' || b == b'\r')
        || value.first().is_some_and(|&b| b == b' ' || b == b'\t')
        || value.last().is_some_and(|&b| b == b' ' || b == b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(m: &str) -> String {
        reply(&EchoRequest { message: m.into() }).message
    }

    #[test]
    fn replies_with_prefix() {
        assert_eq!(echo("Hello World!"), "You said: Hello World!");
    }

    #[test]
    fn many_plan_defaults_and_limits() {
        let req = |count, interval_ms| EchoManyRequest {
            message: "m".into(),
            count,
            interval_ms,
        };
        assert_eq!(many_plan(&req(0, 0)).map(|p| p.count), Ok(DEFAULT_MANY));
        assert_eq!(
            many_plan(&req(5, 250)),
            Ok(ManyPlan {
                count: 5,
                interval: Duration::from_millis(250)
            })
        );
        assert_eq!(
            many_plan(&req(MAX_MANY, MAX_INTERVAL_MS)).map(|p| p.count),
            Ok(MAX_MANY)
        );
        assert_eq!(
            many_plan(&req(MAX_MANY + 1, 0)).map_err(|e| e.0),
            Err(Code::InvalidArgument)
        );
        assert_eq!(
            many_plan(&req(1, MAX_INTERVAL_MS + 1)).map_err(|e| e.0),
            Err(Code::InvalidArgument)
        );
    }

    #[test]
    fn many_replies_are_numbered() {
        assert_eq!(many_reply("hi", 2, 3).message, "You said: hi (2/3)");
    }

    #[test]
    fn joiner_joins_with_spaces() {
        let mut j = Joiner::default();
        assert!(j.is_empty());
        assert_eq!(Joiner::default().finish().message, "You said: ");
        for m in ["Hello", "board"] {
            j.push(&EchoRequest { message: m.into() });
        }
        assert_eq!(j.len(), "You said: Hello board".len());
        assert_eq!(j.finish().message, "You said: Hello board");
    }

    #[test]
    fn empty_and_unicode() {
        assert_eq!(echo(""), "You said: ");
        assert_eq!(echo("grüß 🌍"), "You said: grüß 🌍");
    }
}
