//! Fuzz target: the gRPC length-prefixed message decoder
//! (`lean_grpc::grpc::message::Decoder`) and the pure functions of the gRPC
//! layer that see request bytes.
//!
//! Input layout (see `fuzz/gen-seeds`):
//! * byte 0: the message size bound, from a table of small values;
//! * byte 1: `n`, the number of chunk-size bytes that follow;
//! * `n` chunk sizes (0 means "all that is left"), used in turn;
//! * the rest: the request stream's DATA bytes (length-prefixed messages).
//!
//! The stream is pushed in those chunks, draining `next_message` after each.
//! Checked against a one-pass reference parser of the whole stream: the same
//! messages in the same order, the same failure (code) at the same message,
//! `is_partial` at the end exactly when bytes of an unfinished message are
//! left, and no message over the bound. Each message is also handed to the
//! services that decode request protobufs (Echo, Health, reflection; and
//! `decode_only` must accept exactly what those accept), and the
//! stream bytes to `grpc-timeout` parsing, `:path` routing and the
//! `grpc-message` percent-encoding (decode ∘ encode is the identity).

#![no_main]

use bytes::Bytes;
use lean_grpc::grpc::message::{Decoder, PREFIX_LEN};
use lean_grpc::grpc::reflection::{Reflection, V1};
use lean_grpc::grpc::{status, timeout};
use lean_grpc::proto::echo::EchoRequest;
use lean_grpc::proto::health::HealthCheckRequest;
use lean_grpc::proto::{ECHO_SERVICE, FILE_DESCRIPTOR_SET, HEALTH_SERVICE};
use prost::Message;
use lean_grpc::status::Code;
use libfuzzer_sys::fuzz_target;

const MAX_SIZES: [usize; 8] = [0, 1, 4, 5, 16, 100, 1024, 4096];

/// What the reference parser expects after the messages.
#[derive(Debug, PartialEq)]
enum End {
    /// The stream ends between messages.
    Clean,
    /// The stream ends inside a prefix or a body.
    Partial,
    /// The call fails with this code.
    Fail(Code),
}

/// One pass over the whole stream, written as plainly as possible.
fn reference(stream: &[u8], max: usize) -> (Vec<&[u8]>, End) {
    let mut messages = Vec::new();
    let mut rest = stream;
    loop {
        if rest.is_empty() {
            return (messages, End::Clean);
        }
        if rest.len() < PREFIX_LEN {
            return (messages, End::Partial);
        }
        let flag = rest[0];
        if flag != 0 {
            return (messages, End::Fail(Code::Internal));
        }
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if len > max {
            return (messages, End::Fail(lean_grpc::service::TOO_LARGE));
        }
        let body = &rest[PREFIX_LEN..];
        if body.len() < len {
            return (messages, End::Partial);
        }
        messages.push(&body[..len]);
        rest = &body[len..];
    }
}

fuzz_target!(|data: &[u8]| {
    let [m, n, rest @ ..] = data else {
        return;
    };
    let max = MAX_SIZES[usize::from(*m) % MAX_SIZES.len()];
    let n = usize::from(*n).min(rest.len());
    let (sizes, stream) = rest.split_at(n);

    let (want, want_end) = reference(stream, max);

    let mut decoder = Decoder::new(max);
    let mut got: Vec<Bytes> = Vec::new();
    let mut failed = None;
    let mut input = stream;
    let mut step = 0;
    'feed: while !input.is_empty() {
        let size = match sizes.get(step % sizes.len().max(1)).copied().unwrap_or(0) {
            0 => input.len(),
            s => usize::from(s).min(input.len()),
        };
        step += 1;
        let (chunk, after) = input.split_at(size);
        input = after;
        decoder.push(Bytes::copy_from_slice(chunk));
        // Each call either takes bytes, hands out a message or stops: bounded.
        loop {
            match decoder.next_message() {
                Ok(Some(msg)) => {
                    assert!(
                        msg.len() <= max,
                        "message of {} bytes over the bound {max}",
                        msg.len()
                    );
                    got.push(msg);
                }
                Ok(None) => break,
                Err(status) => {
                    failed = Some(status.code);
                    break 'feed;
                }
            }
        }
    }

    assert_eq!(
        got.len(),
        want.len(),
        "message count differs from the reference"
    );
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(&g[..], *w, "message bytes differ from the reference");
    }
    match want_end {
        End::Fail(code) => assert_eq!(failed, Some(code), "expected the call to fail"),
        End::Partial => {
            assert_eq!(failed, None);
            assert!(
                decoder.is_partial(),
                "unfinished message not reported as partial"
            );
        }
        End::Clean => {
            assert_eq!(failed, None);
            assert!(!decoder.is_partial(), "clean end reported as partial");
        }
    }

    // The services decode request protobufs from client bytes: none may panic.
    let reflection = Reflection::new(FILE_DESCRIPTOR_SET, [ECHO_SERVICE, HEALTH_SERVICE, V1])
        .expect("the compiled-in descriptor set describes the served services");
    for msg in &got {
        if let Ok(request) = EchoRequest::decode(msg.clone()) {
            let reply = lean_grpc::service::reply(&request);
            assert!(reply.message.starts_with(lean_grpc::service::REPLY_PREFIX));
            assert!(reply.message.ends_with(&request.message));
        }
        let _ = HealthCheckRequest::decode(msg.clone());
        if let Ok(answer) = reflection.answer(msg) {
            // An answer is itself a well-formed response message.
            assert!(answer.len() < 16 << 20, "reflection answer of {} bytes", answer.len());
        }
    }

    // Header values the session parses.
    let _ = timeout::parse(stream);
    let text = status::percent_decode(stream);
    assert_eq!(
        status::percent_decode(status::percent_encode(&text).as_bytes()),
        text
    );
});
