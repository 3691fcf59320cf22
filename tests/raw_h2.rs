//! HTTP/2 protocol cases sent with the suite's own frame writer, for input
//! a gRPC library would never produce. Each case also checks that the
//! server stays usable afterwards.

mod common;

use std::time::Duration;

use common::raw::{echo_request, grpc_frame, grpc_headers, Conn};
use common::Server;

const WAIT: Duration = Duration::from_secs(10);

/// Makes a well-formed call on `stream` and checks the reply.
fn assert_echo_works(conn: &mut Conn, stream: u32, message: &str) {
    conn.headers(stream, &grpc_headers("/echo.Echo/Reply"), false);
    conn.data(stream, &grpc_frame(&echo_request(message.as_bytes())), true);
    let resp = conn.response(stream, WAIT);
    assert_eq!(resp.status(), Some(200), "{resp:?}");
    assert_eq!(
        resp.get("content-type")
            .map(|v| v.starts_with("application/grpc")),
        Some(true),
        "{resp:?}"
    );
    assert_eq!(resp.grpc_status(), Some(0), "{resp:?}");
    let reply = format!("You said: {message}");
    assert_eq!(
        resp.data,
        grpc_frame(&echo_request(reply.as_bytes())),
        "{resp:?}"
    );
}

#[test]
fn hand_built_call_round_trips() {
    let server = Server::start(&[]);
    let mut conn = Conn::handshake(server.addr());
    assert_echo_works(&mut conn, 1, "raw");
    assert_echo_works(&mut conn, 3, "raw again");
}

#[test]
fn bad_preface_closes_the_connection() {
    let server = Server::start(&[]);
    let mut conn = Conn::connect(server.addr());
    conn.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(
        conn.wait_closed(WAIT),
        "server kept a connection with a bad preface open"
    );
    // Whatever came back before the close is HTTP/2 framing (SETTINGS,
    // GOAWAY), never an HTTP/1.1 response.
    assert!(
        !conn.unparsed().starts_with(b"HTTP/1"),
        "{:?}",
        String::from_utf8_lossy(conn.unparsed())
    );
    // The server itself is unaffected.
    let mut good = Conn::handshake(server.addr());
    assert_echo_works(&mut good, 1, "after bad preface");
}

/// A non-gRPC request must get a complete response, either an HTTP error
/// status or a gRPC error status, and not a silently dropped stream.
fn assert_refused_cleanly(fields: &[(&str, &str)], body: Option<&[u8]>) {
    let server = Server::start(&[]);
    let mut conn = Conn::handshake(server.addr());
    conn.headers(1, fields, body.is_none());
    if let Some(body) = body {
        conn.data(1, body, true);
    }
    let resp = conn.response(1, WAIT);
    let status = resp.status();
    assert!(
        status.is_some(),
        "no response headers for {fields:?}: {resp:?}"
    );
    if status == Some(200) {
        let grpc = resp.grpc_status();
        assert!(
            grpc.is_some_and(|g| g != 0),
            "200 without a gRPC error for {fields:?}: {resp:?}"
        );
    } else {
        assert!(
            status.is_some_and(|s| (400..600).contains(&s)),
            "{fields:?}: {resp:?}"
        );
    }
    assert!(
        resp.ended || resp.reset == Some(0),
        "response not ended for {fields:?}: {resp:?}"
    );
    // The connection survives a refused request.
    assert_echo_works(&mut conn, 3, "still here");
}

#[test]
fn get_root_gets_a_complete_error_response() {
    assert_refused_cleanly(
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "localhost"),
        ],
        None,
    );
}

#[test]
fn wrong_content_type_is_refused() {
    let mut fields = grpc_headers("/echo.Echo/Reply");
    for f in fields.iter_mut() {
        if f.0 == "content-type" {
            f.1 = "text/plain";
        }
    }
    let body = grpc_frame(&echo_request(b"hi"));
    assert_refused_cleanly(&fields, Some(&body));
}
