//! The workstation tool `echo-client` (feature `client`) against a real
//! server of this build's flavour: what it prints and how it exits.

#![cfg(feature = "client")]

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{run, Output, Server};

const CLIENT_BIN: &str = env!("CARGO_BIN_EXE_echo-client");
const WAIT: Duration = Duration::from_secs(30);

fn client(args: &[&str]) -> Output {
    run(CLIENT_BIN, args, &[], WAIT)
}

/// Asserts exactly one non-empty line on stderr, and returns it.
fn one_line(out: &Output) -> &str {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "expected one stderr line:\n{}", out.stderr);
    lines[0]
}

#[test]
fn echo_prints_the_reply() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let out = client(&["--addr", &addr, "hello", "world"]);
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    assert_eq!(out.stdout, "You said: hello world\n");
    // The default message is the tutorial's.
    let out = client(&["--addr", &format!("http://{addr}")]);
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    assert_eq!(out.stdout, "You said: Hello World!\n");
    // `echo` first sends a message that would otherwise look like a command.
    let out = client(&["--addr", &addr, "echo", "health"]);
    assert_eq!(out.stdout, "You said: health\n", "stderr:\n{}", out.stderr);
}

#[test]
fn health_prints_serving() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    for args in [
        vec!["--addr", &addr, "health"],
        vec!["--addr", &addr, "health", "--service", "echo.Echo"],
    ] {
        let out = client(&args);
        assert_eq!(out.code, Some(0), "{args:?}: stderr:\n{}", out.stderr);
        assert_eq!(out.stdout, "SERVING\n", "{args:?}");
    }
}

#[test]
fn connection_refused_is_one_unavailable_line() {
    // A port that was free a moment ago and has no listener now.
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let out = client(&[
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--timeout",
        "5s",
        "hi",
    ]);
    assert!(out.code.is_some_and(|c| c != 0), "exit {:?}", out.code);
    assert!(out.stdout.is_empty(), "stdout:\n{}", out.stdout);
    let line = one_line(&out);
    assert!(line.contains("UNAVAILABLE"), "{line}");
}

#[test]
fn non_ok_status_prints_the_code_name() {
    let server = Server::start(&["--max-message-size", "1KiB"]);
    let addr = server.addr().to_string();
    let big = "z".repeat(2000);
    let out = client(&["--addr", &addr, &big]);
    assert!(out.code.is_some_and(|c| c != 0), "exit {:?}", out.code);
    assert!(out.stdout.is_empty(), "stdout:\n{}", out.stdout);
    let line = one_line(&out);
    assert!(line.contains("RESOURCE_EXHAUSTED"), "{line}");

    let out = client(&["--addr", &addr, "health", "--service", "no.such.Service"]);
    assert!(out.code.is_some_and(|c| c != 0), "exit {:?}", out.code);
    let line = one_line(&out);
    assert!(line.contains("NOT_FOUND"), "{line}");
}

#[test]
fn bad_usage_is_one_line_and_exit_1() {
    let out = client(&["--bogus"]);
    assert_eq!(out.code, Some(1));
    assert!(one_line(&out).contains("--bogus"));
    let out = client(&["--help"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("--addr") && out.stdout.contains("health"));
}
