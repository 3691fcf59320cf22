//! gRPC behaviour seen through a real tonic client: echo, limits, bad
//! requests, health, reflection, concurrency and graceful shutdown. Runs
//! against whichever server flavour the cargo features build.

#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::grpc::{self, LateStream};
use common::Server;
use lean_grpc::proto::health::health_check_response::ServingStatus;
use lean_grpc::proto::health::health_client::HealthClient;
use lean_grpc::proto::health::HealthCheckRequest;
use prost::bytes::Bytes;
use prost::Message;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::Code;

#[tokio::test]
async fn echo_replies_with_prefix() {
    let server = Server::start(&[]);
    let mut client = grpc::echo_client(&server.url()).await;
    assert_eq!(
        grpc::reply(&mut client, "Hello World!").await.unwrap(),
        "You said: Hello World!"
    );
    // A second call on the same connection works too.
    assert_eq!(
        grpc::reply(&mut client, "again").await.unwrap(),
        "You said: again"
    );
}

#[tokio::test]
async fn empty_and_unicode_messages() {
    let server = Server::start(&[]);
    let mut client = grpc::echo_client(&server.url()).await;
    assert_eq!(grpc::reply(&mut client, "").await.unwrap(), "You said: ");
    let text = "grüß dich 🌍 — ελληνικά, 日本語";
    assert_eq!(
        grpc::reply(&mut client, text).await.unwrap(),
        format!("You said: {text}")
    );
}

#[tokio::test]
async fn one_mebibyte_message_round_trips() {
    let server = Server::start(&[]);
    let mut client = grpc::echo_client(&server.url()).await;
    let big: String = "0123456789abcdef".repeat(1 << 16); // 1 MiB
    let reply = grpc::reply(&mut client, &big).await.unwrap();
    assert_eq!(reply.len(), "You said: ".len() + big.len());
    assert!(reply.starts_with("You said: 0123"));
    assert!(reply.ends_with(&big[big.len() - 64..]));
}

#[tokio::test]
async fn oversize_message_is_resource_exhausted() {
    let server = Server::start(&["--max-message-size", "1KiB"]);
    let mut client = grpc::echo_client(&server.url()).await;
    // Exactly at the limit: the encoded EchoRequest is 1024 bytes.
    let fits = "x".repeat(1024 - 3);
    assert_eq!(
        grpc::reply(&mut client, &fits).await.unwrap(),
        format!("You said: {fits}")
    );
    let status = grpc::reply(&mut client, &"x".repeat(2048))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // The connection is still usable afterwards.
    assert_eq!(
        grpc::reply(&mut client, "small").await.unwrap(),
        "You said: small"
    );
}

#[tokio::test]
async fn unknown_method_and_service_are_unimplemented() {
    let server = Server::start(&[]);
    let channel = grpc::channel(&server.url()).await;
    let body = EchoRequestBytes::of("hi");
    for path in [
        "/echo.Echo/Nope",
        "/echo.Nope/Reply",
        "/no.such.Service/Method",
    ] {
        let status = grpc::raw_unary(channel.clone(), path, body.clone())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented, "{path}: {status:?}");
    }
}

/// Encodes an `EchoRequest` the way any client would.
struct EchoRequestBytes;
impl EchoRequestBytes {
    fn of(message: &str) -> Vec<u8> {
        lean_grpc::proto::echo::EchoRequest {
            message: message.to_owned(),
        }
        .encode_to_vec()
    }
}

#[tokio::test]
async fn undecodable_request_is_an_error_not_a_reply() {
    let server = Server::start(&[]);
    let channel = grpc::channel(&server.url()).await;
    let cases: [(&str, Vec<u8>); 3] = [
        // Field 1 with a length running past the end of the message.
        ("truncated", vec![0x0a, 0x10, b'h', b'i']),
        // Field 1 as a fixed32 instead of a string: wrong wire type.
        ("wrong wire type", vec![0x0d, 1, 2, 3, 4]),
        // Field 1 holding bytes that are not UTF-8 (proto3 strings must be).
        ("invalid utf-8", vec![0x0a, 0x03, 0xff, 0xfe, 0xfd]),
    ];
    for (what, body) in cases {
        let status = grpc::raw_unary(channel.clone(), "/echo.Echo/Reply", body)
            .await
            .unwrap_err();
        assert!(
            matches!(status.code(), Code::Internal | Code::InvalidArgument),
            "{what}: expected INTERNAL or INVALID_ARGUMENT, got {status:?}"
        );
    }
    // A well-formed request on the same connection still works.
    let ok = grpc::raw_unary(channel, "/echo.Echo/Reply", EchoRequestBytes::of("fine"))
        .await
        .unwrap();
    let reply = lean_grpc::proto::echo::EchoReply::decode(ok).unwrap();
    assert_eq!(reply.message, "You said: fine");
}

#[tokio::test]
async fn health_check_reports_serving() {
    let server = Server::start(&[]);
    let mut health = HealthClient::new(grpc::channel(&server.url()).await);
    for service in ["", "echo.Echo"] {
        let resp = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|s| panic!("Check({service:?}): {s:?}"))
            .into_inner();
        assert_eq!(
            resp.status,
            ServingStatus::Serving as i32,
            "Check({service:?})"
        );
    }
    let status = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

#[tokio::test]
async fn health_watch_first_message_is_serving() {
    let server = Server::start(&[]);
    let mut health = HealthClient::new(grpc::channel(&server.url()).await);
    let mut stream = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("first Watch message in time")
        .expect("Watch stream ok")
        .expect("Watch sent a message");
    assert_eq!(first.status, ServingStatus::Serving as i32);
}

/// Server reflection is always on in the tokio flavour and a cargo feature
/// (`reflection`, ~26 KB) in the runtime-free one, whose default build stays
/// within its size budget without it; `scripts/test` runs this file with the
/// feature too.
#[cfg(any(feature = "tokio-server", feature = "reflection"))]
#[tokio::test]
async fn reflection_lists_every_service_in_both_versions() {
    use common::grpc::{ReflectionRequest, ReflectionResponse};
    let server = Server::start(&[]);
    let channel = grpc::channel(&server.url()).await;
    let request = ReflectionRequest {
        host: String::new(),
        list_services: Some(String::new()),
    }
    .encode_to_vec();
    let mut answers = Vec::new();
    for path in [
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ] {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let requests = tonic::codegen::tokio_stream::iter(vec![Bytes::from(request.clone())]);
        let result = grpc
            .streaming(
                tonic::Request::new(requests),
                PathAndQuery::from_static(path),
                grpc::BytesCodec,
            )
            .await;
        let resp = result.unwrap_or_else(|status| panic!("{path}: {status:?}"));
        let mut stream = resp.into_inner();
        let msg = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("reflection answer in time")
            .expect("reflection stream ok")
            .expect("reflection sent a message");
        let resp = ReflectionResponse::decode(msg).expect("valid ServerReflectionResponse");
        let names = resp
            .list_services_response
            .map(|l| l.service.into_iter().map(|s| s.name).collect::<Vec<_>>())
            .unwrap_or_default();
        answers.push((path, names));
    }
    for (path, names) in answers {
        for service in [
            "echo.Echo",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(
                names.iter().any(|n| n == service),
                "{path} does not list {service}: {names:?}"
            );
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            names.len(),
            "{path} lists a service twice: {names:?}"
        );
    }
}

#[tokio::test]
async fn two_hundred_concurrent_calls_on_one_channel() {
    let server = Server::start(&[]);
    let client = grpc::echo_client(&server.url()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let mut client = client.clone();
        tasks.spawn(async move { (i, grpc::reply(&mut client, &format!("call {i}")).await) });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.expect("task");
        assert_eq!(result.expect("call ok"), format!("You said: call {i}"));
        done += 1;
    }
    assert_eq!(done, 200);
}

#[tokio::test]
async fn expired_deadline_is_deadline_exceeded() {
    // The request headers carry grpc-timeout; the body never comes, so only
    // the server's own deadline can end the call.
    let server = Server::start(&[]);
    let mut conn = common::raw::Conn::handshake(server.addr());
    let mut headers = common::raw::grpc_headers("/echo.Echo/Reply");
    headers.push(("grpc-timeout", "200m"));
    conn.headers(1, &headers, false);
    let resp = tokio::task::spawn_blocking(move || conn.response(1, Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(resp.status(), Some(200), "{resp:?}");
    assert_eq!(
        resp.grpc_status(),
        Some(4),
        "expected DEADLINE_EXCEEDED: {resp:?}"
    );
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_call_finish_then_exits_zero() {
    let mut server = Server::start(&["--drain-timeout", "10s"]);
    let channel = grpc::channel(&server.url()).await;
    // A first call makes sure the connection is up before the slow call
    // starts, so its HEADERS reach the server well before the SIGTERM.
    let warm = grpc::raw_unary(
        channel.clone(),
        "/echo.Echo/Reply",
        EchoRequestBytes::of("warm"),
    );
    assert!(warm.await.is_ok());
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let call = tokio::spawn(async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        grpc.client_streaming(
            tonic::Request::new(LateStream(rx)),
            PathAndQuery::from_static("/echo.Echo/Reply"),
            grpc::BytesCodec,
        )
        .await
        .map(|r| r.into_inner())
    });
    // The call's HEADERS are out; the message is not. Now ask the server to stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.sigterm();
    assert!(
        server.wait_for_log("shutdown requested", Duration::from_secs(10)),
        "no shutdown log line:\n{}",
        server.log()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.wait_exit(Duration::ZERO).is_none(),
        "server exited with a call in flight"
    );
    tx.send(Bytes::from(EchoRequestBytes::of("late")))
        .await
        .unwrap();
    drop(tx);
    let reply = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("in-flight call finished in time")
        .unwrap()
        .expect("in-flight call succeeded");
    let reply = lean_grpc::proto::echo::EchoReply::decode(reply).unwrap();
    assert_eq!(reply.message, "You said: late");
    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(15));
        (status, server.log())
    })
    .await
    .unwrap();
    assert_eq!(
        status.0.and_then(|s| s.code()),
        Some(0),
        "exit after drain; log:\n{}",
        status.1
    );
}

/// At the cap, idle connections give their slots to new ones (GOAWAY
/// NO_ERROR); tonic clients whose connection gave way reconnect on their
/// next call, so every client keeps being served.
#[tokio::test]
async fn max_connections_gives_idle_slots_to_new_connections() {
    let server = Server::start(&["--max-connections", "2"]);
    let mut first = grpc::echo_client(&server.url()).await;
    let mut second = grpc::echo_client(&server.url()).await;
    assert_eq!(
        grpc::reply(&mut first, "one").await.unwrap(),
        "You said: one"
    );
    assert_eq!(
        grpc::reply(&mut second, "two").await.unwrap(),
        "You said: two"
    );

    // Both are idle: a third connection takes the slot idle longest.
    let addr = server.addr();
    let third = tokio::task::spawn_blocking(move || {
        let mut conn = common::raw::Conn::handshake(addr);
        conn.headers(1, &common::raw::grpc_headers("/echo.Echo/Reply"), false);
        conn.data(
            1,
            &common::raw::grpc_frame(&EchoRequestBytes::of("three")),
            true,
        );
        conn.response(1, Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert_eq!(third.grpc_status(), Some(0), "third connection: {third:?}");

    // The two earlier clients keep working (one of them reconnects). The
    // evicted connection's close reaches its client asynchronously; a call
    // that races it fails (inherent to any server closing an idle
    // connection), so give the client a moment to see the close first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        grpc::reply(&mut first, "one again").await.unwrap(),
        "You said: one again"
    );
    assert_eq!(
        grpc::reply(&mut second, "two again").await.unwrap(),
        "You said: two again"
    );
}

#[tokio::test]
async fn health_watch_turns_not_serving_on_shutdown() {
    // A Watch stream open across SIGTERM sees the drain: SERVING, then
    // NOT_SERVING, then the stream ends with OK (in both flavours), so it
    // does not hold the drain open; the server exits 0.
    let mut server = Server::start(&["--drain-timeout", "2s"]);
    let mut health = HealthClient::new(grpc::channel(&server.url()).await);
    let mut stream = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next_status(&mut stream).await,
        ServingStatus::Serving as i32
    );
    server.sigterm();
    assert_eq!(
        next_status(&mut stream).await,
        ServingStatus::NotServing as i32
    );
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
    assert!(matches!(end, Ok(Ok(None))), "Watch did not end: {end:?}");
    let (status, log) = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(15));
        (status, server.log())
    })
    .await
    .unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "log:\n{log}");
}

/// The next health Watch status, within a bounded wait.
async fn next_status(
    stream: &mut tonic::Streaming<lean_grpc::proto::health::HealthCheckResponse>,
) -> i32 {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("Watch message in time")
        .expect("Watch stream ok")
        .expect("Watch sent a message")
        .status
}

/// grpcio-reflection's client (v1alpha; an independent implementation)
/// lists the services and resolves every one to its methods from the
/// schema files reflection sends. Here rather than in `tests/interop.rs` so
/// it runs in the runtime-free build with `reflection` too.
#[cfg(any(feature = "tokio-server", feature = "reflection"))]
#[test]
fn python_reflection_client_describes_every_service() {
    let server = Server::start(&[]);
    let out = common::clients::python("reflection_client.py", &[&server.addr().to_string()]);
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    for service in [
        "echo.Echo: Reply ReplyMany ReplyJoined ReplyEach",
        "grpc.health.v1.Health: Check Watch",
        "grpc.reflection.v1.ServerReflection: ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection: ServerReflectionInfo",
    ] {
        assert!(lines.contains(&service), "no {service:?} in {lines:#?}");
    }
    #[cfg(feature = "interop")]
    assert!(
        lines.contains(
            &"grpc.testing.TestService: EmptyCall UnaryCall StreamingOutputCall \
             StreamingInputCall FullDuplexCall HalfDuplexCall UnimplementedMethod"
        ),
        "{lines:#?}"
    );
    #[cfg(feature = "telemetry")]
    assert!(lines.contains(&"telemetry.Telemetry: Watch"), "{lines:#?}");
}
