//! The README's "Add your own service" example, checked: the code the
//! README shows is exactly `proto/examples/greeter.proto` and
//! `examples/greeter.rs`, and that example, served by the runtime-free
//! driver on loopback, answers a real tonic client.

#![cfg(all(feature = "runtime-free", feature = "client"))]

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use lean_grpc::config::Config;
use lean_grpc::proto::greeter::greeter_client::GreeterClient;
use lean_grpc::proto::greeter::{CountdownRequest, HelloRequest};

/// The example program itself (its `main` is not used here).
#[allow(dead_code)]
#[path = "../examples/greeter.rs"]
mod greeter;

const README: &str = include_str!("../README.md");
const EXAMPLE: &str = include_str!("../examples/greeter.rs");
const PROTO: &str = include_str!("../proto/examples/greeter.proto");

#[test]
fn readme_shows_the_example_verbatim() {
    for (name, text) in [("examples/greeter.rs", EXAMPLE), ("greeter.proto", PROTO)] {
        assert!(
            README.contains(text),
            "README.md (\"Add your own service\") must show {name} exactly as it is"
        );
    }
    // The build.rs line, as the README shows it.
    let line = r#"const EXAMPLE_PROTOS: &[&str] = &["examples/greeter.proto"];"#;
    assert!(README.contains(line), "README shows the build.rs line");
    assert!(
        include_str!("../build.rs").contains(line),
        "build.rs lists the example schema as the README says"
    );
}

#[tokio::test]
async fn the_example_serves_its_service_beside_echo() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (signals, mut stop) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let config = Config::default();
        let router = greeter::router(&config);
        lean_grpc::server::readiness::serve(listener, signals, config, router)
    });
    let url = format!("http://{addr}");
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    let mut client = GreeterClient::new(channel.clone());

    let mut request = tonic::Request::new(HelloRequest {
        name: "board".into(),
    });
    request
        .metadata_mut()
        .insert("x-lang", "fr".parse().unwrap());
    let response = client.say_hello(request).await.unwrap();
    assert_eq!(response.get_ref().message, "Hello, board!");
    // The trailer the handler set from the request header (tonic merges a
    // unary call's trailers into its metadata).
    assert_eq!(
        response
            .metadata()
            .get("x-lang")
            .map(|v| v.to_str().unwrap()),
        Some("fr")
    );

    let status = client.say_hello(HelloRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    let mut stream = client
        .countdown(CountdownRequest { from: 3 })
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(reply) = stream.message().await.unwrap() {
        got.push(reply.message);
    }
    assert_eq!(got, ["3", "2", "1", "Liftoff!"]);
    // echo-server's own services are still there.
    let mut echo = lean_grpc::proto::echo::echo_client::EchoClient::new(channel);
    let reply = echo
        .reply(lean_grpc::proto::echo::EchoRequest {
            message: "still here".into(),
        })
        .await
        .unwrap();
    assert_eq!(reply.get_ref().message, "You said: still here");

    stop.write_all(b"x").unwrap();
    server.join().unwrap().unwrap();
}
