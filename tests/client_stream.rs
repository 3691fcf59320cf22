//! `echo-client`'s streaming subcommands (`many`, `joined`, `each`, `watch`)
//! against a real server: each streamed reply is printed as a line.
//!
//! Runs against whichever server flavour the features build (both serve the
//! streaming Echo RPCs). `watch` needs the feature `telemetry` in the same
//! build.

#![cfg(feature = "client")]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{run, Output, Server};

const CLIENT_BIN: &str = env!("CARGO_BIN_EXE_echo-client");
const WAIT: Duration = Duration::from_secs(30);

fn client(args: &[&str]) -> Output {
    run(CLIENT_BIN, args, &[], WAIT)
}

#[test]
fn many_prints_each_numbered_reply() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let out = client(&[
        "many",
        "--addr",
        &addr,
        "--count",
        "3",
        "--interval",
        "10ms",
        "hi",
        "board",
    ]);
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    assert_eq!(
        out.stdout,
        "You said: hi board (1/3)\nYou said: hi board (2/3)\nYou said: hi board (3/3)\n"
    );
    // The server's limit comes back as the status line, exit 2.
    let out = client(&["many", "--addr", &addr, "--count", "1001"]);
    assert_eq!(out.code, Some(2), "stdout:\n{}", out.stdout);
    assert!(
        out.stderr.starts_with("error: INVALID_ARGUMENT"),
        "{}",
        out.stderr
    );
}

#[test]
fn joined_and_each_send_words_or_stdin_lines() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let out = client(&["joined", "--addr", &addr, "a", "b", "c"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "You said: a b c\n"),
        "{}",
        out.stderr
    );
    let out = client(&["each", "--addr", &addr, "x", "y"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "You said: x\nYou said: y\n"),
        "{}",
        out.stderr
    );
    for (subcommand, expected) in [
        ("each", "You said: one\nYou said: two words\n"),
        ("joined", "You said: one two words\n"),
    ] {
        let mut child = Command::new(CLIENT_BIN)
            .args([subcommand, "--addr", &addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn echo-client");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"one\ntwo words\n").expect("write");
        drop(stdin);
        let out = child.wait_with_output().expect("echo-client finishes");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "{subcommand}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success());
    }
}

#[test]
fn bad_usage_exits_1() {
    for args in [
        &["many", "--count", "lots"][..],
        &["each", "--interval", "1s"],
        &["watch", "now"],
    ] {
        let out = client(args);
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    }
    let out = client(&["--help"]);
    assert!(out.stdout.contains("echo-client many"), "{}", out.stdout);
}

#[cfg(feature = "telemetry")]
#[test]
fn watch_prints_live_readings() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let out = client(&[
        "watch",
        "--addr",
        &addr,
        "--interval",
        "100ms",
        "--count",
        "2",
    ]);
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("#1 ") && lines[1].starts_with("#2 "),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" load ") && l.contains(" GiB free")),
        "{lines:?}"
    );
    let out = client(&["watch", "--addr", &addr, "--interval", "5ms"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.starts_with("error: INVALID_ARGUMENT"),
        "{}",
        out.stderr
    );
}

#[cfg(not(feature = "telemetry"))]
#[test]
fn watch_says_how_to_get_it() {
    let server = Server::start(&[]);
    let out = client(&["watch", "--addr", &server.addr().to_string()]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("--features telemetry"),
        "{}",
        out.stderr
    );
}
