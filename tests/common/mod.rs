//! Shared helpers for the integration suite: spawn the real `echo-server`
//! binary of whichever flavour this build selected, find its port, talk to it.
//!
//! Both flavours run the same test files: `cargo test` builds the tokio
//! server, `cargo test --no-default-features --features runtime-free,client`
//! the runtime-free one. Every server listens on `127.0.0.1:0`; the bound
//! port is read from the startup log line ("listening on ADDR ...").

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod clients;
pub mod raw;
pub mod skip;

#[cfg(feature = "client")]
pub mod grpc;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The server binary under test (the flavour follows the cargo features).
pub const SERVER_BIN: &str = env!("CARGO_BIN_EXE_echo-server");

/// How long a server may take to print its startup line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the server wrote to stderr so far, plus whether it closed.
#[derive(Default)]
struct Log {
    text: String,
    closed: bool,
}

/// A running `echo-server` child process; killed when dropped.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<(Mutex<Log>, Condvar)>,
}

impl Server {
    /// Starts the server on `127.0.0.1:0` with `args` appended and waits for
    /// its startup line. Panics (failing the test) with the server's stderr
    /// if it does not come up within [`STARTUP_TIMEOUT`].
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// Like [`Server::start`], with extra environment variables. `--listen`
    /// is added only when neither `args` nor `env` choose an address.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(SERVER_BIN);
        let chooses_addr = args.iter().any(|a| a.starts_with("--listen"))
            || env.iter().any(|(k, _)| *k == "ECHO_LISTEN");
        if !chooses_addr {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(args);
        clear_echo_env(&mut cmd);
        cmd.envs(env.iter().copied());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn echo-server");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new((Mutex::new(Log::default()), Condvar::new()));
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            let reader = BufReader::new(stderr);
            for line in reader.lines() {
                let Ok(line) = line else { break };
                let (lock, cvar) = &*sink;
                let mut log = lock.lock().expect("log lock");
                log.text.push_str(&line);
                log.text.push('\n');
                cvar.notify_all();
            }
            let (lock, cvar) = &*sink;
            lock.lock().expect("log lock").closed = true;
            cvar.notify_all();
        });

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let addr = loop {
            let (lock, cvar) = &*log;
            let guard = lock.lock().expect("log lock");
            if let Some(addr) = parse_listen_addr(&guard.text) {
                break addr;
            }
            let now = Instant::now();
            if guard.closed || now >= deadline {
                let text = guard.text.clone();
                drop(guard);
                let _ = child.kill();
                let _ = child.wait();
                panic!("echo-server did not start (args {args:?}); stderr:\n{text}");
            }
            let _ = cvar.wait_timeout(guard, deadline - now).expect("log lock");
        };
        Server { child, addr, log }
    }

    /// The address the server actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for tonic channels.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        signal(self.pid(), "TERM");
    }

    /// Sends SIGINT.
    pub fn sigint(&self) {
        signal(self.pid(), "INT");
    }

    /// Waits up to `timeout` for the process to exit; `None` if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }

    /// Everything the server printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.0.lock().expect("log lock").text.clone()
    }

    /// Waits up to `timeout` for `needle` to appear in the server's stderr.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.log;
        let mut guard = lock.lock().expect("log lock");
        loop {
            if guard.text.contains(needle) {
                return true;
            }
            let now = Instant::now();
            if guard.closed || now >= deadline {
                return false;
            }
            guard = cvar
                .wait_timeout(guard, deadline - now)
                .expect("log lock")
                .0;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Finds the address after "listening on " in the startup line.
pub fn parse_listen_addr(log: &str) -> Option<SocketAddr> {
    let rest = &log[log.find("listening on ")? + "listening on ".len()..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Removes every `ECHO_*` variable the test runner may have inherited, so
/// only what a test sets reaches the server, and any proxy setting, so
/// third-party clients talk to the loopback server directly.
pub fn clear_echo_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy().to_ascii_lowercase();
        if k.starts_with("echo_") || k.ends_with("_proxy") {
            cmd.env_remove(key);
        }
    }
}

/// Sends a signal by name with `kill(1)` (the test crates forbid no unsafe,
/// but a child process keeps them free of libc bindings).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Output of a finished command.
pub struct Output {
    /// Exit code (`None` if killed by a signal or timed out).
    pub code: Option<i32>,
    /// Standard output as text.
    pub stdout: String,
    /// Standard error as text.
    pub stderr: String,
}

/// Runs `program args` with `env` (and no inherited `ECHO_*`), killing it
/// after `timeout`.
pub fn run(program: &str, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    clear_echo_env(&mut cmd);
    cmd.envs(env.iter().copied());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let out = child.stdout.take().expect("piped stdout");
    let err = child.stderr.take().expect("piped stderr");
    let out = thread::spawn(move || read_all(out));
    let err = thread::spawn(move || read_all(err));
    let status = wait_child(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if status.is_none() {
        panic!("{program} {args:?} did not finish within {timeout:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    }
    Output {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
    }
}

fn read_all(mut r: impl std::io::Read) -> String {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
