//! Interoperability with real third-party gRPC stacks: the Python tutorial
//! client (grpcio), a grpcio health probe, python-hyper `h2`, Node's
//! `@grpc/grpc-js`, and nghttp2's `h2load`. These are what users point at the
//! server, so they must never be skipped: missing clients FAIL the test.
//! `scripts/test` installs them (via `tests/interop/setup.sh`).

mod common;

use std::path::Path;
use std::time::Duration;

use common::clients::{self, python};
use common::{run, Output, Server};

fn node_client(args: &[&str]) -> Output {
    clients::node("client.js", args)
}

#[test]
fn python_tutorial_client_gets_its_reply() {
    let server = Server::start(&[]);
    let out = python("tutorial_client.py", &[&server.addr().to_string()]);
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    assert_eq!(
        out.stdout, "Echo client received: You said: Hello World!\n",
        "stderr:\n{}",
        out.stderr
    );
}

#[test]
fn python_health_check_is_serving() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    for service in ["", "echo.Echo"] {
        let out = python("health_check.py", &[&addr, service]);
        assert_eq!(
            out.code,
            Some(0),
            "service {service:?}: stderr:\n{}",
            out.stderr
        );
        assert_eq!(out.stdout, "SERVING\n", "service {service:?}");
    }
    let out = python("health_check.py", &[&addr, "no.such.Service"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(1), "NOT_FOUND\n"),
        "stderr:\n{}",
        out.stderr
    );
}

/// grpcio-reflection's client (v1alpha) lists the services and resolves
/// every one to its methods from the schema files reflection sends.
#[cfg(any(feature = "tokio-server", feature = "reflection"))]
#[test]
fn python_reflection_client_describes_every_service() {
    let server = Server::start(&[]);
    let out = python("reflection_client.py", &[&server.addr().to_string()]);
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

#[test]
fn python_h2_non_grpc_request_gets_a_complete_response() {
    let server = Server::start(&[]);
    let port = server.addr().port().to_string();
    for (method, path, ctype) in [("GET", "/", ""), ("POST", "/echo.Echo/Reply", "text/plain")] {
        let mut args = vec!["127.0.0.1", port.as_str(), method, path];
        if !ctype.is_empty() {
            args.push(ctype);
        }
        let out = python("h2_get.py", &args);
        assert_eq!(
            out.code,
            Some(0),
            "{method} {path}: stderr:\n{}",
            out.stderr
        );
        let lines: Vec<&str> = out.stdout.lines().collect();
        let status = lines
            .iter()
            .find_map(|l| l.strip_prefix("status "))
            .and_then(|s| s.parse::<u16>().ok());
        let grpc = lines
            .iter()
            .find_map(|l| l.strip_prefix("grpc-status "))
            .and_then(|s| s.parse::<u32>().ok());
        match status {
            Some(200) => assert!(grpc.is_some_and(|g| g != 0), "{method} {path}: {lines:?}"),
            Some(s) => assert!((400..600).contains(&s), "{method} {path}: {lines:?}"),
            None => panic!("{method} {path}: no response: {lines:?}"),
        }
        assert_eq!(lines.last(), Some(&"ended"), "{method} {path}: {lines:?}");
    }
}

#[test]
fn node_grpc_js_client_gets_its_reply() {
    let server = Server::start(&["--max-message-size", "1KiB"]);
    let addr = server.addr().to_string();
    let out = node_client(&[&addr, "héllo wörld 🌍"]);
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    assert_eq!(out.stdout, "You said: héllo wörld 🌍\n");
    let big = "y".repeat(4096);
    let out = node_client(&[&addr, &big]);
    assert_eq!(
        out.code,
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.starts_with("error RESOURCE_EXHAUSTED"),
        "{}",
        out.stdout
    );
}

/// Parses `N` out of h2load's "... N succeeded ..." style summary lines.
fn h2load_count(output: &str, line_start: &str, word: &str) -> Option<u64> {
    let line = output
        .lines()
        .find(|l| l.trim_start().starts_with(line_start))?;
    let words: Vec<&str> = line
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let i = words.iter().position(|w| *w == word)?;
    words.get(i.checked_sub(1)?)?.parse().ok()
}

#[test]
fn h2load_many_streams_per_connection_all_succeed() {
    let h2load_present = std::process::Command::new("h2load")
        .arg("--version")
        .output()
        .is_ok();
    if !h2load_present {
        common::skip::skip(
            "interop::h2load_many_streams_per_connection_all_succeed",
            "h2load not installed (apt-get install nghttp2-client; scripts/test installs it)",
        );
        return;
    }
    let server = Server::start(&[]);
    let body = Path::new(env!("CARGO_TARGET_TMPDIR")).join("h2load-echo-request.bin");
    // gRPC frame of EchoRequest { message: "hello" }.
    std::fs::write(
        &body,
        common::raw::grpc_frame(&common::raw::echo_request(b"hello")),
    )
    .expect("write body");
    let url = format!("http://{}/echo.Echo/Reply", server.addr());
    let requests = 4000u64;
    let out = run(
        "h2load",
        &[
            "-n",
            &requests.to_string(),
            "-c",
            "4",
            "-m",
            "50",
            "-t",
            "1",
            "-d",
            body.to_str().expect("utf-8 path"),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            &url,
        ],
        &[],
        Duration::from_secs(120),
    );
    assert_eq!(
        out.code,
        Some(0),
        "h2load failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    let text = &out.stdout;
    assert_eq!(
        h2load_count(text, "requests:", "succeeded"),
        Some(requests),
        "{text}"
    );
    assert_eq!(h2load_count(text, "requests:", "failed"), Some(0), "{text}");
    assert_eq!(
        h2load_count(text, "requests:", "errored"),
        Some(0),
        "{text}"
    );
    assert_eq!(
        h2load_count(text, "status codes:", "2xx"),
        Some(requests),
        "{text}"
    );
    // HTTP 200 is not gRPC success: an error status comes back as HTTP 200 with
    // grpc-status in a trailers-only response and no DATA. h2load cannot read
    // trailers, but it counts the DATA bytes it received: exactly one framed
    // `EchoReply { "You said: hello" }` per request means every call got its reply.
    let reply = common::raw::grpc_frame(&common::raw::echo_request(b"You said: hello"));
    assert_eq!(
        h2load_data_bytes(text),
        Some(requests * reply.len() as u64),
        "not every request got exactly the expected reply ({} bytes each):\n{text}",
        reply.len()
    );
    // The server is still healthy afterwards: the same request on a new
    // connection gets grpc-status 0 and exactly that reply.
    let mut conn = common::raw::Conn::handshake(server.addr());
    conn.headers(1, &common::raw::grpc_headers("/echo.Echo/Reply"), false);
    conn.data(1, &std::fs::read(&body).expect("read body"), true);
    let resp = conn.response(1, Duration::from_secs(10));
    assert_eq!(resp.grpc_status(), Some(0), "{resp:?}");
    assert_eq!(resp.data, reply, "{resp:?}");
}

/// The DATA bytes h2load received: `N` in "traffic: ... (N) data".
fn h2load_data_bytes(output: &str) -> Option<u64> {
    let line = output
        .lines()
        .find(|l| l.trim_start().starts_with("traffic:"))?;
    let before = line.strip_suffix(" data")?;
    let open = before.rfind('(')?;
    before[open + 1..].strip_suffix(')')?.parse().ok()
}

#[test]
fn h2load_traffic_parser_reads_data_bytes() {
    let sample = "traffic: 88.28KB (90400) total, 1.21KB (1240) headers (space savings 95.39%), 85.94KB (88000) data\n";
    assert_eq!(h2load_data_bytes(sample), Some(88000));
    assert_eq!(h2load_data_bytes("traffic: nothing"), None);
}

#[test]
fn h2load_summary_parser_reads_counts() {
    let sample =
        "requests: 10 total, 10 started, 9 done, 8 succeeded, 1 failed, 1 errored, 0 timeout\n\
                  status codes: 8 2xx, 0 3xx, 1 4xx, 0 5xx\n";
    assert_eq!(h2load_count(sample, "requests:", "succeeded"), Some(8));
    assert_eq!(h2load_count(sample, "requests:", "errored"), Some(1));
    assert_eq!(h2load_count(sample, "status codes:", "2xx"), Some(8));
    assert_eq!(h2load_count(sample, "status codes:", "9xx"), None);
}
