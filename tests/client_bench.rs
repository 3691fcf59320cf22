//! `echo-client bench` against this build's real `echo-server`: replies are
//! counted and checked, a server that dies mid-run is reported as errors (no
//! panic), and a server that is not there is a clean start-up error.
#![cfg(feature = "client")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Starts echo-server on a free loopback port; returns it and its address.
fn start_server() -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--listen", "127.0.0.1:0", "--log", "info"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn echo-server");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server exited before its startup line")
            .expect("read stderr");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().expect("address").to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{addr}"))
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_echo-client"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run echo-client")
}

/// The integer after `"key":` in the one-line JSON summary.
fn field(json: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\":");
    let start = json
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing in {json}"))
        + pat.len();
    json[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

#[test]
fn counts_every_checked_reply() {
    let (mut server, addr) = start_server();
    let out = bench(&[
        "--addr",
        &addr,
        "--requests",
        "300",
        "--connections",
        "2",
        "--streams",
        "3",
        "--message-size",
        "100",
        "--json",
    ]);
    let _ = server.kill();
    let _ = server.wait();
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}: {json}", out.status);
    assert_eq!(field(&json, "requests"), 300, "{json}");
    assert_eq!(field(&json, "ok"), 300, "{json}");
    assert_eq!(field(&json, "failed"), 0, "{json}");
    assert_eq!(field(&json, "connections"), 2, "{json}");
    assert!(json.contains("\"errors\":{}"), "{json}");
}

#[test]
fn server_dying_mid_run_is_counted_not_a_panic() {
    let (mut server, addr) = start_server();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let _ = server.kill();
        let _ = server.wait();
    });
    let out = bench(&["--addr", &addr, "--duration", "2s", "--json"]);
    killer.join().expect("killer thread");
    let json = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{json} / {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(field(&json, "ok") > 0, "{json}");
    assert!(field(&json, "failed") > 0, "{json}");
    assert!(json.contains("UNAVAILABLE"), "{json}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn no_server_is_a_start_up_error() {
    // Bind and drop a listener to get a port that nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let out = bench(&["--addr", &format!("127.0.0.1:{port}"), "--requests", "5"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("connection 1 of 1: UNAVAILABLE: connection refused"),
        "{err}"
    );
}

#[test]
fn absurd_connection_counts_fail_at_once() {
    for args in [
        &["--connections", "10000"][..],
        &["--connections", "1000", "--streams", "1000"],
    ] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--connections"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn bad_option_is_rejected() {
    let out = bench(&["--connections", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--connections"));
}
