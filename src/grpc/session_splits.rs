//! The session answers the same whatever the read boundaries (issue 11):
//! each malformed request (RFC 9113 §8.1 and its neighbours) is fed in one
//! read, split in two at every byte, and one byte at a time, and the bytes
//! written back must be identical, and hold the expected error. A valid
//! call follows each bad one, so the tests also show what survives.

use std::rc::Rc;

use super::{Session, NOT_POST_BODY};
use crate::config::Config;
use crate::grpc::message;
use crate::grpc::services;
use crate::grpc::testwire::*;
use crate::h2::Timestamp;
use crate::proto::echo::EchoRequest;

/// RST_STREAM and GOAWAY frame types, error codes (RFC 9113 §7).
const NO_ERROR: u32 = 0;
const PROTOCOL_ERROR: u32 = 1;
const STREAM_CLOSED: u32 = 5;

/// Runs a fresh session over `chunks` (each one `handle_input`) and returns
/// everything it wrote.
fn run(chunks: &[&[u8]]) -> Vec<u8> {
    let config = Config::default();
    let router = Rc::new(services::router(config.max_message_size));
    let now = Timestamp::from_secs(1);
    let mut session = Session::new(&config.session_limits(), router, now);
    for chunk in chunks {
        session.handle_input(chunk, now);
    }
    let mut out = Vec::new();
    for _ in 0..4 {
        session.poll_transmit(&mut out);
    }
    out
}

/// The (type, stream, error code) of every RST_STREAM and GOAWAY in `out`.
fn errors(out: &[u8]) -> Vec<(u8, u32, u32)> {
    let mut found = Vec::new();
    let mut rest = out;
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let ty = rest[3];
        let id = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
        let payload = &rest[9..9 + len];
        let code = |at: usize| {
            u32::from_be_bytes([
                payload[at],
                payload[at + 1],
                payload[at + 2],
                payload[at + 3],
            ])
        };
        match ty {
            RST_STREAM => found.push((ty, id, code(0))),
            GOAWAY => found.push((ty, id, code(4))),
            _ => {}
        }
        rest = &rest[9 + len..];
    }
    found
}

/// Feeds `input` every way, checks the answers are the same bytes and
/// returns them.
fn same_bytes_every_split(name: &str, input: &[u8]) -> Vec<u8> {
    let whole = run(&[input]);
    for at in 1..input.len() {
        let (a, b) = input.split_at(at);
        assert!(
            run(&[a, b]) == whole,
            "{name}: split at byte {at} answers differently"
        );
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert!(
        run(&bytes) == whole,
        "{name}: byte by byte answers differently"
    );
    whole
}

/// Feeds `input` every way and checks the answers agree and contain `want`.
fn same_answer_every_split(name: &str, input: &[u8], want: (u8, u32, u32)) {
    let whole = same_bytes_every_split(name, input);
    assert!(
        errors(&whole).contains(&want),
        "{name}: expected {want:?} in {:?}",
        errors(&whole)
    );
}

fn request(path: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut fields = vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "x"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ];
    fields.extend_from_slice(extra);
    fields
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn headers(id: u32, fields: &[(String, String)], end_stream: bool) -> Vec<u8> {
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(HEADERS, flags, id, &block(&fields))
}

fn echo(id: u32, text: &str, end_stream: bool) -> Vec<u8> {
    let body = message::encode(&EchoRequest {
        message: text.into(),
    });
    frame(DATA, if end_stream { END_STREAM } else { 0 }, id, &body)
}

/// Preface, SETTINGS, then `frames`, then a good call on stream 99.
fn conversation(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut input = PREFACE.to_vec();
    input.extend(frame(SETTINGS, 0, 0, &[]));
    for f in frames {
        input.extend_from_slice(f);
    }
    input.extend(headers(99, &request("/echo.Echo/Reply", &[]), false));
    input.extend(echo(99, "fine", true));
    input
}

fn reply_path() -> Vec<(String, String)> {
    request("/echo.Echo/Reply", &[])
}

#[test]
fn second_headers_without_end_stream() {
    // §8.1: trailers must carry END_STREAM.
    let trailers = vec![("x-t".to_string(), "1".to_string())];
    let input = conversation(&[
        headers(1, &reply_path(), false),
        echo(1, "a", false),
        headers(1, &trailers, false),
    ]);
    same_answer_every_split("2nd HEADERS", &input, (RST_STREAM, 1, PROTOCOL_ERROR));
}

#[test]
fn pseudo_header_in_trailers() {
    // §8.3: pseudo-header fields are not allowed in trailers.
    let trailers = vec![(":path".to_string(), "/x".to_string())];
    let input = conversation(&[
        headers(1, &reply_path(), false),
        echo(1, "a", false),
        headers(1, &trailers, true),
    ]);
    same_answer_every_split(
        "pseudo in trailers",
        &input,
        (RST_STREAM, 1, PROTOCOL_ERROR),
    );
}

#[test]
fn content_length_mismatch() {
    // §8.1.1: content-length must equal the DATA received.
    let input = conversation(&[
        headers(
            1,
            &request("/echo.Echo/Reply", &[("content-length", "3")]),
            false,
        ),
        echo(1, "longer than three", true),
    ]);
    same_answer_every_split("content-length", &input, (RST_STREAM, 1, PROTOCOL_ERROR));
}

#[test]
fn data_after_rst_stream() {
    // §5.1 closed: frames after the peer's own RST_STREAM are STREAM_CLOSED.
    let input = conversation(&[
        headers(1, &reply_path(), false),
        frame(RST_STREAM, 0, 1, &8u32.to_be_bytes()),
        echo(1, "late", true),
    ]);
    same_answer_every_split("DATA after RST_STREAM", &input, (GOAWAY, 0, STREAM_CLOSED));
}

#[test]
fn data_after_end_stream() {
    // §5.1 half-closed (remote): more DATA is STREAM_CLOSED.
    let input = conversation(&[
        headers(1, &reply_path(), false),
        echo(1, "a", true),
        echo(1, "b", true),
    ]);
    let whole = run(&[&input]);
    assert!(
        !errors(&whole).is_empty(),
        "an error for DATA after END_STREAM"
    );
    same_answer_every_split("DATA after END_STREAM", &input, errors(&whole)[0]);
}

#[test]
fn malformed_request_heads() {
    // §8.2, §8.3: each of these makes the request malformed (stream
    // PROTOCOL_ERROR), the connection serves on.
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        (
            "upper-case name",
            request("/echo.Echo/Reply", &[("X-Up", "1")]),
        ),
        (
            "connection header",
            request("/echo.Echo/Reply", &[("connection", "keep-alive")]),
        ),
        (
            "te not trailers",
            request("/echo.Echo/Reply", &[("te", "gzip")]),
        ),
        (
            "duplicate :path",
            request("/echo.Echo/Reply", &[(":path", "/again")]),
        ),
        (
            "unknown pseudo",
            request("/echo.Echo/Reply", &[(":bogus", "1")]),
        ),
        (
            "missing :scheme",
            reply_path()
                .into_iter()
                .filter(|(n, _)| n != ":scheme")
                .collect(),
        ),
        ("empty :path", request("", &[])),
    ];
    for (name, fields) in cases {
        let input = conversation(&[headers(1, &fields, false), echo(1, "a", true)]);
        same_answer_every_split(name, &input, (RST_STREAM, 1, PROTOCOL_ERROR));
    }
}

#[test]
fn non_grpc_request_is_answered_once_complete() {
    // A GET is answered 405 only when its request ends, so a malformed
    // rest of the request is caught the same way however it arrives.
    let get = |extra: &[(&str, &str)]| {
        let f: Vec<(String, String)> = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "x"),
        ]
        .iter()
        .chain(extra)
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        f
    };
    let input = conversation(&[
        headers(1, &get(&[("content-length", "2")]), false),
        echo(1, "too long", true),
    ]);
    same_answer_every_split(
        "GET / with a bad body",
        &input,
        (RST_STREAM, 1, PROTOCOL_ERROR),
    );
    let body = echo(1, "ok", true);
    let len = (body.len() - 9).to_string();
    let input = conversation(&[headers(1, &get(&[("content-length", &len)]), false), body]);
    let whole = same_bytes_every_split("GET / answered", &input);
    assert!(errors(&whole).is_empty(), "{:?}", errors(&whole));
    assert!(
        whole
            .windows(NOT_POST_BODY.len())
            .any(|w| w == NOT_POST_BODY.as_bytes()),
        "405 body once the request is complete"
    );
}

#[test]
fn early_grpc_errors_do_not_depend_on_the_split() {
    // An unknown method is answered Trailers-Only on its HEADERS; the
    // rest of the request is then dropped with RST_STREAM(NO_ERROR).
    let input = conversation(&[
        headers(
            1,
            &request("/echo.Echo/Nope", &[("content-length", "1")]),
            false,
        ),
        echo(1, "too long", true),
    ]);
    same_answer_every_split("unknown method", &input, (RST_STREAM, 1, NO_ERROR));
}
