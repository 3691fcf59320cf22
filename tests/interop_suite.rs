//! grpc's interop client cases (interop-test-descriptions.md) against
//! `grpc.testing.TestService` on a real `echo-server` on a loopback port:
//! Python grpcio runs all fourteen cases below, `@grpc/grpc-js` runs
//! server_streaming and ping_pong. Both are HTTP/2 stacks independent of ours.
//!
//! Gated by features: this file builds only with the cargo feature `interop`
//! (`required-features` in Cargo.toml), e.g.
//! `cargo test --features interop --test interop_suite`, and tests whichever
//! server flavour that build selects (both serve TestService).

mod common;

use common::clients::{node, python};
use common::Server;

/// The Python client's cases, each of which must PASS.
const PYTHON_CASES: [&str; 14] = [
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "status_code_and_message",
    "special_status_message",
    "custom_metadata",
    "unimplemented_method",
    "unimplemented_service",
];

/// The grpc-js client's cases.
const NODE_CASES: [&str; 2] = ["server_streaming", "ping_pong"];

/// Checks that `stdout` has exactly one `PASS case` line per case and no
/// FAIL line.
fn assert_all_passed(client: &str, cases: &[&str], out: &common::Output) {
    let lines: Vec<&str> = out.stdout.lines().collect();
    let failed: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FAIL")).collect();
    let missing: Vec<&&str> = cases
        .iter()
        .filter(|case| !lines.contains(&format!("PASS {case}").as_str()))
        .collect();
    assert!(
        failed.is_empty() && missing.is_empty() && out.code == Some(0),
        "{client}: failed {failed:?}, no result for {missing:?}, exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    assert_eq!(lines.len(), cases.len(), "{client}: {lines:?}");
}

#[test]
fn python_grpcio_interop_cases_pass() {
    let server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let cases = PYTHON_CASES.join(",");
    let out = python(
        "interop_client.py",
        &[
            "--server_host=127.0.0.1",
            &format!("--server_port={port}"),
            &format!("--test_case={cases}"),
        ],
    );
    assert_all_passed("python grpcio", &PYTHON_CASES, &out);
}

#[test]
fn node_grpc_js_interop_cases_pass() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let mut args = vec![addr.as_str()];
    args.extend(NODE_CASES);
    let out = node("interop_client.js", &args);
    assert_all_passed("node grpc-js", &NODE_CASES, &out);
}

/// The server keeps serving Echo beside TestService, and a failing
/// interop case cannot leave the server unable to answer.
#[test]
fn echo_is_served_beside_test_service() {
    let server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let out = python(
        "interop_client.py",
        &[
            &format!("--server_port={port}"),
            "--test_case=status_code_and_message,large_unary",
        ],
    );
    assert_all_passed(
        "python grpcio",
        &["status_code_and_message", "large_unary"],
        &out,
    );
    let out = python("tutorial_client.py", &[&server.addr().to_string()]);
    assert_eq!(
        out.stdout, "Echo client received: You said: Hello World!\n",
        "stderr:\n{}",
        out.stderr
    );
}

/// Over `--max-message-size`, the interop messages get a clear
/// RESOURCE_EXHAUSTED (the 271,828-byte request, or the 314,159-byte reply
/// the server will not build), and the server goes on serving.
#[test]
fn messages_over_the_limit_are_resource_exhausted() {
    let server = Server::start(&["--max-message-size", "64KiB"]);
    let port = format!("--server_port={}", server.addr().port());
    let out = python(
        "interop_client.py",
        &[&port, "--test_case=large_unary,empty_unary"],
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(out.code, Some(1), "{lines:?}\n{}", out.stderr);
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("FAIL large_unary") && l.contains("RESOURCE_EXHAUSTED")),
        "{lines:?}"
    );
    assert_eq!(lines.get(1), Some(&"PASS empty_unary"), "{lines:?}");
}
