//! HTTP/2 protocol cases sent with the suite's own frame writer, for input
//! a gRPC library would never produce. Each case also checks that the
//! server stays usable afterwards.

mod common;

use std::time::Duration;

use common::raw::{echo_request, flag, grpc_frame, grpc_headers, ty, Conn};
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

/// The exact refusal both flavours give a request that is not gRPC: a
/// complete response with `status`, a `text/plain` body and, for 405, `allow: POST`.
fn assert_http_refusal(fields: &[(&str, &str)], status: u16, body: &str) {
    let server = Server::start(&[]);
    let mut conn = Conn::handshake(server.addr());
    conn.headers(1, fields, true);
    let resp = conn.response(1, WAIT);
    assert_eq!(resp.status(), Some(status), "{fields:?}: {resp:?}");
    let allow = if status == 405 { Some("POST") } else { None };
    assert_eq!(resp.get("allow"), allow, "{resp:?}");
    assert!(
        resp.get("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{resp:?}"
    );
    assert_eq!(String::from_utf8_lossy(&resp.data), body, "{resp:?}");
    assert!(resp.ended, "{resp:?}");
    assert_echo_works(&mut conn, 3, "after the refusal");
}

#[test]
fn any_method_but_post_gets_405_with_allow_post() {
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/echo.Echo/Reply"),
        ("PUT", "/echo.Echo/Reply"),
    ] {
        let mut fields = grpc_headers(path);
        fields[0] = (":method", method);
        assert_http_refusal(&fields, 405, lean_grpc::service::NOT_POST_BODY);
    }
}

#[test]
fn wrong_content_type_gets_415_with_a_text_body() {
    let mut fields = grpc_headers("/echo.Echo/Reply");
    for f in fields.iter_mut() {
        if f.0 == "content-type" {
            f.1 = "text/plain";
        }
    }
    assert_http_refusal(&fields, 415, lean_grpc::service::NOT_GRPC_BODY);
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

#[test]
fn request_split_into_tiny_frames_and_continuation_works() {
    let server = Server::start(&[]);
    let mut conn = Conn::handshake(server.addr());
    // The header block split over HEADERS + two CONTINUATION frames.
    let mut encoder = hpack::Encoder::new();
    let fields = grpc_headers("/echo.Echo/Reply");
    let block = encoder.encode(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
    let (a, rest) = block.split_at(block.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    conn.frame(ty::HEADERS, 0, 1, a);
    conn.frame(ty::CONTINUATION, 0, 1, b);
    conn.frame(ty::CONTINUATION, flag::END_HEADERS, 1, c);
    // The gRPC message one byte per DATA frame, then an empty END_STREAM.
    let body = grpc_frame(&echo_request("in pieces".as_bytes()));
    for byte in &body {
        conn.data(1, std::slice::from_ref(byte), false);
    }
    conn.data(1, &[], true);
    let resp = conn.response(1, WAIT);
    assert_eq!(resp.grpc_status(), Some(0), "{resp:?}");
    assert_eq!(resp.data, grpc_frame(&echo_request(b"You said: in pieces")));
}

#[test]
fn ping_is_acked_and_unknown_frames_are_ignored() {
    let server = Server::start(&[]);
    let mut conn = Conn::handshake(server.addr());
    // An extension frame type (0xfa) must be ignored (RFC 9113 §4.1, §5.5).
    conn.frame(0xfa, 0, 0, b"ignore me");
    conn.frame(ty::PING, 0, 0, b"12345678");
    let deadline = std::time::Instant::now() + WAIT;
    let ack = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let frame = conn
            .read_frame(left)
            .expect("PING ack before close or timeout");
        if frame.ty == ty::PING && frame.flags & flag::ACK != 0 {
            break frame;
        }
        assert_ne!(
            frame.ty,
            ty::GOAWAY,
            "GOAWAY instead of a PING ack: {frame:?}"
        );
    };
    assert_eq!(ack.payload, b"12345678");
    assert_echo_works(&mut conn, 1, "after ping");
}

#[test]
fn compressed_flag_without_encoding_is_refused() {
    // Compressed-Flag 1 with no grpc-encoding negotiated: the message cannot
    // be decoded, so the call must fail rather than echo garbage.
    let server = Server::start(&[]);
    let mut conn = Conn::handshake(server.addr());
    let mut body = grpc_frame(&echo_request(b"hi"));
    body[0] = 1;
    conn.headers(1, &grpc_headers("/echo.Echo/Reply"), false);
    conn.data(1, &body, true);
    let resp = conn.response(1, WAIT);
    assert!(
        resp.grpc_status().is_some_and(|g| g != 0) || resp.reset.is_some(),
        "{resp:?}"
    );
    assert!(resp.data.is_empty(), "a reply was sent: {resp:?}");
    assert_echo_works(&mut conn, 3, "still fine");
}

#[test]
fn many_streams_on_one_raw_connection() {
    let server = Server::start(&[]);
    let mut conn = Conn::handshake(server.addr());
    // 50 calls opened back to back (below the default 100-stream limit),
    // then all answers collected.
    let ids: Vec<u32> = (0..50).map(|i| 1 + 2 * i).collect();
    for id in &ids {
        conn.headers(*id, &grpc_headers("/echo.Echo/Reply"), false);
        conn.data(
            *id,
            &grpc_frame(&echo_request(format!("n{id}").as_bytes())),
            true,
        );
    }
    let mut answered = std::collections::HashMap::new();
    let mut block = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    let mut decoder = hpack::Decoder::new();
    while answered.len() < ids.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let frame = conn
            .read_frame(left)
            .unwrap_or_else(|| panic!("answers so far: {answered:?}"));
        match frame.ty {
            ty::HEADERS | ty::CONTINUATION => {
                block.extend_from_slice(&frame.payload);
                if frame.flags & flag::END_HEADERS != 0 {
                    let fields = decoder.decode(&block).expect("valid HPACK");
                    block.clear();
                    for (k, v) in fields {
                        if k == b"grpc-status" {
                            assert_eq!(v, b"0", "stream {}", frame.stream);
                        }
                    }
                }
            }
            ty::DATA if !frame.payload.is_empty() => {
                let want = grpc_frame(&echo_request(
                    format!("You said: n{}", frame.stream).as_bytes(),
                ));
                assert_eq!(frame.payload, want, "stream {}", frame.stream);
                answered.insert(frame.stream, true);
            }
            ty::RST_STREAM | ty::GOAWAY => panic!("unexpected {frame:?}"),
            _ => {}
        }
    }
}

#[test]
fn wildcard_ipv6_listen_serves_ipv4_and_ipv6_loopback() {
    // The default listen address is [::]:50051; it must take IPv4 clients too.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        common::skip::skip(
            "raw_h2::wildcard_ipv6_listen_serves_ipv4_and_ipv6_loopback",
            "this machine has no IPv6 loopback ([::1] cannot be bound)",
        );
        return;
    }
    let server = Server::start(&["--listen", "[::]:0"]);
    let port = server.addr().port();
    assert!(server.addr().ip().is_unspecified(), "{}", server.addr());
    for ip in ["127.0.0.1", "::1"] {
        let addr = std::net::SocketAddr::new(ip.parse().unwrap(), port);
        let mut conn = Conn::handshake(addr);
        assert_echo_works(&mut conn, 1, ip);
    }
}

/// The server's first SETTINGS frame as (identifier, value) pairs.
fn server_settings(conn: &mut Conn) -> Vec<(u16, u32)> {
    let frame = conn.read_frame(WAIT).expect("server SETTINGS");
    assert_eq!(
        (frame.ty, frame.flags & flag::ACK),
        (ty::SETTINGS, 0),
        "{frame:?}"
    );
    frame
        .payload
        .chunks_exact(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect()
}

#[test]
fn stream_limit_is_advertised_and_enforced() {
    let server = Server::start(&["--max-concurrent-streams", "2"]);
    let mut conn = Conn::handshake(server.addr());
    let settings = server_settings(&mut conn);
    assert!(
        settings.contains(&(0x3, 2)),
        "MAX_CONCURRENT_STREAMS=2 not advertised: {settings:?}"
    );
    // Let our SETTINGS ACK be processed, so the limit is in force.
    std::thread::sleep(Duration::from_millis(100));
    // Two calls left open (no body yet), then a third over the limit.
    conn.headers(1, &grpc_headers("/echo.Echo/Reply"), false);
    conn.headers(3, &grpc_headers("/echo.Echo/Reply"), false);
    conn.headers(5, &grpc_headers("/echo.Echo/Reply"), false);
    let third = conn.response(5, WAIT);
    // RFC 9113 §5.1.2: PROTOCOL_ERROR or REFUSED_STREAM (a stream error).
    assert!(
        matches!(third.reset, Some(0x1) | Some(0x7)),
        "third stream not refused: {third:?}"
    );
    // The two admitted calls complete.
    for (id, text) in [(1, "one"), (3, "two")] {
        conn.data(id, &grpc_frame(&echo_request(text.as_bytes())), true);
        let resp = conn.response(id, WAIT);
        assert_eq!(resp.grpc_status(), Some(0), "stream {id}: {resp:?}");
        assert_eq!(
            resp.data,
            grpc_frame(&echo_request(format!("You said: {text}").as_bytes()))
        );
    }
}

#[test]
fn header_list_limit_is_advertised_and_enforced() {
    let server = Server::start(&["--max-header-list-size", "4KiB"]);
    let mut conn = Conn::handshake(server.addr());
    let settings = server_settings(&mut conn);
    assert!(
        settings.contains(&(0x6, 4096)),
        "MAX_HEADER_LIST_SIZE=4096 not advertised: {settings:?}"
    );
    let big = "v".repeat(8192);
    let mut fields = grpc_headers("/echo.Echo/Reply");
    fields.push(("x-big", &big));
    conn.headers(1, &fields, false);
    conn.data(1, &grpc_frame(&echo_request(b"too many headers")), true);
    let resp = conn.response(1, WAIT);
    // Refused one way or another (431, a gRPC error, a reset, or the
    // connection closed), but never answered as a normal call.
    assert!(
        resp.grpc_status() != Some(0) && resp.data.is_empty(),
        "{resp:?}"
    );
    // The server itself is fine.
    let mut fresh = Conn::handshake(server.addr());
    assert_echo_works(&mut fresh, 1, "small headers");
}

#[test]
fn silent_connection_is_closed_after_the_handshake_timeout() {
    let server = Server::start(&["--handshake-timeout", "1s"]);
    let started = std::time::Instant::now();
    let mut conn = Conn::connect(server.addr());
    // Send nothing at all: no preface.
    assert!(
        conn.wait_closed(WAIT),
        "silent connection still open after {WAIT:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed too early: {:?}",
        started.elapsed()
    );
}

#[test]
fn idle_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "1s"]);
    let mut conn = Conn::handshake(server.addr());
    assert_echo_works(&mut conn, 1, "then idle");
    let started = std::time::Instant::now();
    // Keep reading (and answering PINGs) until the server hangs up.
    let deadline = started + WAIT;
    let mut goaway = false;
    while let Some(frame) =
        conn.read_frame(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        goaway |= frame.ty == ty::GOAWAY;
    }
    let elapsed = started.elapsed();
    assert!(elapsed < WAIT, "idle connection not closed within {WAIT:?}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed too early: {elapsed:?}"
    );
    assert!(goaway, "idle close without GOAWAY: {:?}", conn.seen);
}

#[test]
fn keepalive_closes_a_peer_that_never_acks_and_keeps_one_that_does() {
    let args = [
        "--keepalive-interval",
        "500ms",
        "--keepalive-timeout",
        "500ms",
    ];
    let server = Server::start(&args);

    // A peer that answers PINGs (read_frame acks them) stays connected.
    let mut lively = Conn::handshake(server.addr());
    let until = std::time::Instant::now() + Duration::from_millis(2500);
    let mut pings = 0;
    while let Some(frame) =
        lively.read_frame(until.saturating_duration_since(std::time::Instant::now()))
    {
        assert_ne!(frame.ty, ty::GOAWAY, "a responsive peer was sent GOAWAY");
        pings += usize::from(frame.ty == ty::PING && frame.flags & flag::ACK == 0);
    }
    assert!(
        std::time::Instant::now() >= until,
        "responsive peer was disconnected"
    );
    assert!(
        pings >= 1,
        "no keepalive PING in 2.5 s with a 500 ms interval"
    );
    assert_echo_works(&mut lively, 1, "kept alive");

    // A peer that reads nothing and so never acks is closed.
    let mut silent = Conn::handshake(server.addr());
    assert!(
        silent.wait_closed(WAIT),
        "peer that never acks PINGs still connected"
    );
}
