//! The `echo-server` command line as an operator meets it: `--help`,
//! `--version`, bad flags, bind failures, environment variables, signals,
//! and the README's configuration table staying in step with the options.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{run, Server, SERVER_BIN};
use lean_grpc::config::OPTIONS;

const QUICK: Duration = Duration::from_secs(20);

#[test]
fn help_lists_every_option_with_its_default() {
    let out = run(SERVER_BIN, &["--help"], &[], QUICK);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for o in OPTIONS {
        let line = out
            .stdout
            .lines()
            .position(|l| l.trim_start().starts_with(&format!("--{} ", o.flag)))
            .unwrap_or_else(|| panic!("--help does not list --{}:\n{}", o.flag, out.stdout));
        // The env var and default are on the option's own line or the next one.
        let text: String = out
            .stdout
            .lines()
            .skip(line)
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.contains(o.env),
            "--{} help lacks {}: {text}",
            o.flag,
            o.env
        );
        assert!(
            text.contains(&format!("[default: {}]", o.default)),
            "--{} help lacks its default: {text}",
            o.flag
        );
    }
    assert!(out.stdout.contains("--help") && out.stdout.contains("--version"));
}

#[test]
fn version_names_the_flavour() {
    let out = run(SERVER_BIN, &["--version"], &[], QUICK);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        format!(
            "echo-server {} ({})",
            lean_grpc::VERSION,
            lean_grpc::FLAVOUR
        )
    );
}

/// Asserts a failed start: exit code 1 and exactly one line on stderr.
fn assert_one_line_failure(args: &[&str], env: &[(&str, &str)], must_mention: &str) {
    let out = run(SERVER_BIN, args, env, QUICK);
    assert_eq!(out.code, Some(1), "{args:?}: stderr:\n{}", out.stderr);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: expected one line on stderr, got:\n{}",
        out.stderr
    );
    assert!(
        lines[0].contains(must_mention),
        "{args:?}: {:?} does not mention {must_mention:?}",
        lines[0]
    );
    assert!(
        out.stdout.is_empty(),
        "{args:?}: unexpected stdout:\n{}",
        out.stdout
    );
}

#[test]
fn bad_flags_fail_with_one_line() {
    assert_one_line_failure(&["--bogus", "1"], &[], "--bogus");
    assert_one_line_failure(&["--max-connections", "0"], &[], "--max-connections");
    assert_one_line_failure(&["--listen", "nowhere"], &[], "nowhere");
    assert_one_line_failure(&["--drain-timeout"], &[], "drain-timeout");
    assert_one_line_failure(
        &[],
        &[("ECHO_MAX_MESSAGE_SIZE", "lots")],
        "ECHO_MAX_MESSAGE_SIZE",
    );
}

#[test]
fn port_in_use_fails_with_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_one_line_failure(&["--listen", &addr], &[], &addr);
}

#[test]
fn echo_listen_is_used_and_the_flag_wins() {
    // ECHO_LISTEN alone chooses the address.
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start_with_env(&[], &[("ECHO_LISTEN", &listen)]);
    assert_eq!(server.addr().to_string(), listen);
    drop(server);

    // With both, the flag wins: the environment names a port that is taken.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let env_addr = taken.local_addr().unwrap().to_string();
    let server =
        Server::start_with_env(&["--listen", "127.0.0.1:0"], &[("ECHO_LISTEN", &env_addr)]);
    assert_ne!(server.addr().to_string(), env_addr);
    assert!(server.addr().ip().is_loopback());
}

fn assert_signal_exits_zero(send: fn(&Server)) {
    let mut server = Server::start(&[]);
    send(&server);
    let status = server.wait_exit(Duration::from_secs(15));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "log:\n{}",
        server.log()
    );
    assert!(
        server.wait_for_log("shutdown complete", Duration::from_secs(2)),
        "log:\n{}",
        server.log()
    );
}

#[test]
fn sigterm_exits_zero() {
    assert_signal_exits_zero(Server::sigterm);
}

#[test]
fn sigint_exits_zero() {
    assert_signal_exits_zero(Server::sigint);
}

#[test]
fn idle_connection_does_not_hold_up_shutdown() {
    let mut server = Server::start(&["--drain-timeout", "30s"]);
    let mut conn = common::raw::Conn::handshake(server.addr());
    // Wait for the server's ACK of our SETTINGS: it has read our preface, so
    // the connection is fully established, and idle.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let frame = conn.read_frame(left).expect("server ACKs our SETTINGS");
        if frame.ty == common::raw::ty::SETTINGS && frame.flags & common::raw::flag::ACK != 0 {
            break;
        }
    }
    // The client stays responsive (answers the PINGs a graceful GOAWAY may
    // use) until the server closes the connection.
    let client = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while conn
            .read_frame(deadline.saturating_duration_since(std::time::Instant::now()))
            .is_some()
        {}
        conn.seen
    });
    server.sigterm();
    // Well before the 30 s drain limit: nothing is in flight.
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "log:\n{}",
        server.log()
    );
    let seen = client.join().expect("client thread");
    assert!(
        seen.iter().any(|f| f.ty == common::raw::ty::GOAWAY),
        "no GOAWAY before the close: {seen:?}"
    );
}

/// The README's configuration table, row by row, must be exactly the option
/// table of `src/config.rs`: no missing row, no extra row, same order, and each
/// row's flag, placeholder, environment variable, default (empty: `none`) and
/// meaning (the `--help` line) as declared there.
#[test]
fn readme_configuration_table_matches_the_options() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("README.md has a '## Configuration' section");
    let rows: Vec<Vec<String>> = section
        .lines()
        .skip_while(|l| !l.starts_with("| flag |"))
        .skip(2) // the header and its |---| line
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    let want: Vec<Vec<String>> = OPTIONS
        .iter()
        .map(|o| {
            vec![
                format!("`--{}` {}", o.flag, o.value),
                format!("`{}`", o.env),
                if o.default.is_empty() {
                    "none".to_owned()
                } else {
                    format!("`{}`", o.default)
                },
                o.help.to_owned(),
            ]
        })
        .collect();
    for (i, (have, want)) in rows.iter().zip(&want).enumerate() {
        assert_eq!(have, want, "README configuration table, row {}", i + 1);
    }
    assert_eq!(
        rows.len(),
        want.len(),
        "README configuration table has {} rows, src/config.rs declares {} options",
        rows.len(),
        want.len()
    );
}

#[test]
fn log_off_still_prints_the_startup_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_one_line_failure(&["--listen", &addr, "--log", "off"], &[], &addr);
    assert_one_line_failure(&["--listen", &addr], &[("ECHO_LOG", "off")], &addr);
}

#[test]
fn help_and_version_work_with_an_invalid_environment() {
    let bad = [("ECHO_MAX_MESSAGE_SIZE", "lots")];
    let out = run(SERVER_BIN, &["--help"], &bad, QUICK);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("--max-message-size"));
    let out = run(SERVER_BIN, &["--version"], &bad, QUICK);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with("echo-server "), "{}", out.stdout);
}

#[test]
fn zero_handshake_timeout_and_ambiguous_sizes_are_refused() {
    assert_one_line_failure(&["--handshake-timeout", "0"], &[], "must be more than 0");
    assert_one_line_failure(&["--max-message-size", "4MB"], &[], "ambiguous");
}

/// The systemd unit lists every option's variable once (set, or commented out
/// with its default) and nothing the server does not read.
#[test]
fn systemd_unit_lists_every_option_once() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/boards/echo-server.service");
    let unit = std::fs::read_to_string(path).expect("boards/echo-server.service");
    let lines: Vec<(bool, &str, &str)> = unit
        .lines()
        .filter_map(|l| {
            let commented = l.starts_with('#');
            let rest = l
                .trim_start_matches('#')
                .strip_prefix("Environment=ECHO_")?;
            let (name, value) = rest.split_once('=')?;
            Some((
                commented,
                &l[l.find("ECHO_").expect("ECHO_")..][..name.len() + 5],
                value,
            ))
        })
        .collect();
    for o in OPTIONS {
        let mine: Vec<_> = lines.iter().filter(|(_, n, _)| *n == o.env).collect();
        assert_eq!(
            mine.len(),
            1,
            "the unit lists {} {} times",
            o.env,
            mine.len()
        );
        let (commented, _, value) = mine[0];
        if *commented && !o.default.is_empty() {
            assert_eq!(
                *value, o.default,
                "the unit's commented {} is not the default",
                o.env
            );
        }
    }
    for (_, name, _) in &lines {
        assert!(
            OPTIONS.iter().any(|o| o.env == *name),
            "the unit sets {name}, which echo-server does not read"
        );
    }
}
