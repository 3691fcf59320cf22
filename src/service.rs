//! The Echo behaviour, shared by both server flavours.
//!
//! Everything a flavour must agree on lives here: the reply text, and the
//! status each kind of bad request gets, so the same bad input yields the
//! same gRPC status whichever server answers.

use crate::proto::echo::{EchoReply, EchoRequest};
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

/// Status for a request body that is not a valid `EchoRequest` (bad
/// protobuf, or invalid UTF-8 in `message`). Matches what tonic answers.
pub const DECODE_ERROR: Code = Code::Internal;

/// Status for a request message larger than the configured maximum.
pub const TOO_LARGE: Code = Code::ResourceExhausted;

/// Status for a method or service the server does not serve.
pub const UNKNOWN_METHOD: Code = Code::Unimplemented;

/// Status for a call whose `grpc-timeout` expired before the reply.
pub const DEADLINE: Code = Code::DeadlineExceeded;

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
    fn empty_and_unicode() {
        assert_eq!(echo(""), "You said: ");
        assert_eq!(echo("grüß 🌍"), "You said: grüß 🌍");
    }
}
