//! The streaming Echo RPCs (ReplyMany, ReplyJoined, ReplyEach) through a
//! real tonic client against a real server on loopback: replies, intervals,
//! a slow reader, a client cancel, a deadline mid-stream, request
//! cardinality, a half-closed client. Runs against whichever server flavour
//! the cargo features build, so both are held to the same answers.

#![cfg(feature = "client")]

mod common;

use std::time::{Duration, Instant};

use common::grpc;
use common::Server;
use lean_grpc::proto::echo::{EchoManyRequest, EchoRequest};
use prost::bytes::Bytes;
use prost::Message;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::Code;

fn many(message: &str, count: u32, interval_ms: u32) -> EchoManyRequest {
    EchoManyRequest {
        message: message.into(),
        count,
        interval_ms,
    }
}

fn echo(m: &str) -> EchoRequest {
    EchoRequest { message: m.into() }
}

/// Every reply text of a stream, then its final status.
async fn drain(
    mut stream: tonic::Streaming<lean_grpc::proto::echo::EchoReply>,
) -> (Vec<String>, Result<(), tonic::Status>) {
    let mut texts = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(r)) => texts.push(r.message),
            Ok(None) => return (texts, Ok(())),
            Err(s) => return (texts, Err(s)),
        }
    }
}

#[tokio::test]
async fn reply_many_sends_numbered_replies_an_interval_apart() {
    let server = Server::start(&[]);
    let mut client = grpc::echo_client(&server.url()).await;
    let started = Instant::now();
    let stream = client
        .reply_many(many("hi", 3, 150))
        .await
        .unwrap()
        .into_inner();
    let (texts, end) = drain(stream).await;
    end.unwrap();
    assert_eq!(
        texts,
        [
            "You said: hi (1/3)",
            "You said: hi (2/3)",
            "You said: hi (3/3)"
        ]
    );
    // Two pauses of 150 ms lie between the first reply and the last.
    assert!(started.elapsed() >= Duration::from_millis(300));
    // count 0 is the default of 3.
    let stream = client
        .reply_many(many("d", 0, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(drain(stream).await.0.len(), 3);
}

#[tokio::test]
async fn reply_many_rejects_out_of_range_plans() {
    let server = Server::start(&[]);
    let mut client = grpc::echo_client(&server.url()).await;
    for req in [many("x", 1001, 0), many("x", 1, 60_001)] {
        let status = match client.reply_many(req).await {
            Err(s) => s,
            Ok(r) => drain(r.into_inner()).await.1.unwrap_err(),
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
}

#[tokio::test]
async fn replies_arrive_as_they_are_produced() {
    let server = Server::start(&[]);
    let mut client = grpc::echo_client(&server.url()).await;
    let mut stream = client
        .reply_many(many("t", 2, 2_000))
        .await
        .unwrap()
        .into_inner();
    // The first reply comes at once, not after the whole stream.
    let first = tokio::time::timeout(Duration::from_millis(1_500), stream.message())
        .await
        .expect("first reply before the second is due")
        .unwrap()
        .unwrap();
    assert_eq!(first.message, "You said: t (1/2)");
}

#[tokio::test]
async fn reply_joined_joins_every_message() {
    let server = Server::start(&["--max-message-size", "1KiB"]);
    let mut client = grpc::echo_client(&server.url()).await;
    let words = ["Hello", "from", "a", "board"].map(echo);
    let reply = client
        .reply_joined(tokio_stream_iter(words.to_vec()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.message, "You said: Hello from a board");
    // No message at all: the prefix alone.
    let reply = client
        .reply_joined(tokio_stream_iter(Vec::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.message, "You said: ");
    // Each message fits, the joined reply would not.
    let chunk = echo(&"x".repeat(400));
    let status = client
        .reply_joined(tokio_stream_iter(vec![chunk; 3]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

#[tokio::test]
async fn reply_each_answers_every_message_before_the_next() {
    let server = Server::start(&[]);
    let mut client = grpc::echo_client(&server.url()).await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut replies = client
        .reply_each(ReceiverStream(rx))
        .await
        .unwrap()
        .into_inner();
    // Ping-pong: each reply comes while the request stream is still open.
    for word in ["one", "two", "three"] {
        tx.send(echo(word)).await.unwrap();
        let reply = replies.message().await.unwrap().unwrap();
        assert_eq!(reply.message, format!("You said: {word}"));
    }
    drop(tx);
    assert!(replies.message().await.unwrap().is_none());
}

#[tokio::test]
async fn half_closed_client_still_gets_its_replies() {
    let server = Server::start(&[]);
    let mut client = grpc::echo_client(&server.url()).await;
    // All requests and the half-close are sent before any reply is read.
    let words: Vec<EchoRequest> = (0..50).map(|i| echo(&format!("m{i}"))).collect();
    let stream = client
        .reply_each(tokio_stream_iter(words))
        .await
        .unwrap()
        .into_inner();
    let (texts, end) = drain(stream).await;
    end.unwrap();
    let want: Vec<String> = (0..50).map(|i| format!("You said: m{i}")).collect();
    assert_eq!(texts, want);
}

#[tokio::test]
async fn slow_reader_gets_every_reply_and_others_are_served_meanwhile() {
    let server = Server::start(&[]);
    let mut client = grpc::echo_client(&server.url()).await;
    // 400 replies of 8 KiB: far more than the HTTP/2 windows hold, so the
    // server must wait for the reader instead of queueing them.
    let text = "s".repeat(8 * 1024);
    let mut stream = client
        .reply_many(many(&text, 400, 0))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(first.message.ends_with("(1/400)"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Meanwhile another client is answered at once.
    let mut other = grpc::echo_client(&server.url()).await;
    assert_eq!(
        grpc::reply(&mut other, "meanwhile").await.unwrap(),
        "You said: meanwhile"
    );
    let mut n = 1;
    while let Some(r) = stream.message().await.unwrap() {
        n += 1;
        assert!(
            r.message.ends_with(&format!("({n}/400)")),
            "reply {n} out of order"
        );
        if n % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(n, 400);
}

#[tokio::test]
async fn client_cancel_mid_stream_frees_the_call() {
    let mut server = Server::start(&["--drain-timeout", "2s"]);
    let mut client = grpc::echo_client(&server.url()).await;
    let mut stream = client
        .reply_many(many("c", 1000, 20))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..2 {
        stream.message().await.unwrap().unwrap();
    }
    // Dropping the stream sends RST_STREAM(CANCEL).
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The connection serves on.
    assert_eq!(
        grpc::reply(&mut client, "after").await.unwrap(),
        "You said: after"
    );
    // Nothing is left in flight: the drain finds no call to abandon.
    server.sigterm();
    assert!(
        server.wait_exit(Duration::from_secs(10)).is_some(),
        "no exit after the drain; log:\n{}",
        server.log()
    );
    assert!(
        server.log().contains("shutdown complete"),
        "{}",
        server.log()
    );
    assert!(!server.log().contains("did not finish"), "{}", server.log());
}

#[tokio::test]
async fn deadline_ends_a_stream_with_deadline_exceeded() {
    let server = Server::start(&[]);
    let mut client = grpc::echo_client(&server.url()).await;
    let mut request = tonic::Request::new(many("d", 10, 200));
    request.set_timeout(Duration::from_millis(500));
    let (texts, end) = match client.reply_many(request).await {
        Ok(r) => drain(r.into_inner()).await,
        Err(s) => (Vec::new(), Err(s)),
    };
    let status = end.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(!texts.is_empty() && texts.len() < 10, "{texts:?}");
}

#[tokio::test]
async fn second_request_message_on_server_streaming_is_unimplemented() {
    let server = Server::start(&[]);
    let channel = grpc::channel(&server.url()).await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let two = vec![
        Bytes::from(many("a", 1, 0).encode_to_vec()),
        Bytes::from(many("b", 1, 0).encode_to_vec()),
    ];
    let result = grpc
        .streaming(
            tonic::Request::new(tokio_stream_iter(two)),
            PathAndQuery::from_static("/echo.Echo/ReplyMany"),
            grpc::BytesCodec,
        )
        .await;
    let status = match result {
        Err(s) => s,
        Ok(r) => match r.into_inner().message().await {
            Ok(Some(_)) => panic!("a reply to a call with two requests"),
            Ok(None) => panic!("OK for a call with two requests"),
            Err(e) => e,
        },
    };
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

/// A request stream of the given messages (then the half-close).
fn tokio_stream_iter<T: Send + 'static>(items: Vec<T>) -> ReceiverStream<T> {
    let (tx, rx) = tokio::sync::mpsc::channel(items.len().max(1));
    for item in items {
        tx.try_send(item).expect("room for every item");
    }
    ReceiverStream(rx)
}

/// An mpsc receiver as a request stream.
struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> tonic::codegen::tokio_stream::Stream for ReceiverStream<T> {
    type Item = T;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}
