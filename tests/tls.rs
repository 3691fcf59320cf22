//! TLS and mutual TLS end to end, against the real `echo-server` binary of
//! whichever flavour this build selected:
//!
//! ```text
//! cargo test --features tls --test tls
//! cargo test --no-default-features --features runtime-free,client,tls --test tls
//! ```
//!
//! Certificates are made at test time with rcgen (a CA, a server
//! certificate for 127.0.0.1/localhost, a client certificate from the CA and
//! one from an unrelated CA). Clients: the crate's tonic client, the
//! `echo-client` binary and, when the interop venv exists, Python grpcio.
//!
//! The server spawner here is minimal on purpose (tests/common is not on
//! this branch yet); it reads the bound port from the startup line.

#![cfg(all(feature = "tls", feature = "client"))]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use lean_grpc::client::{self, ClientError, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A scratch directory of PEM files, removed when dropped.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// Writes `ca.pem`; `server.pem`/`server.key` (127.0.0.1, localhost);
    /// `client.pem`/`client.key` from the same CA; `rogue.pem`/`rogue.key`,
    /// a client certificate from an unrelated CA (`rogue-ca.pem`).
    fn new(name: &str) -> Pki {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pki = Pki { dir };
        let ca = new_ca("lean-grpc test CA");
        pki.write("ca.pem", &ca.pem());
        pki.leaf(
            &ca,
            "server",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        pki.leaf(&ca, "client", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let rogue_ca = new_ca("someone else's CA");
        pki.write("rogue-ca.pem", &rogue_ca.pem());
        pki.leaf(&rogue_ca, "rogue", &[], ExtendedKeyUsagePurpose::ClientAuth);
        pki
    }

    /// Writes `NAME.pem` and `NAME.key`, signed by `ca`.
    fn leaf(
        &self,
        ca: &CertifiedIssuer<'static, KeyPair>,
        name: &str,
        sans: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("names");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages.push(usage);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, ca).expect("sign");
        self.write(&format!("{name}.pem"), &cert.pem());
        self.write(&format!("{name}.key"), &key.serialize_pem());
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.dir.join(name), contents).expect("write PEM");
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Client files: trust our CA, optionally present `identity`.pem/.key.
    fn client(&self, identity: Option<&str>) -> TlsFiles {
        TlsFiles {
            ca: Some(self.dir.join("ca.pem")),
            cert: identity.map(|n| self.dir.join(format!("{n}.pem"))),
            key: identity.map(|n| self.dir.join(format!("{n}.key"))),
        }
    }

    /// `--tls-cert/--tls-key`, plus `--client-ca` when `mutual`.
    fn server_args(&self, mutual: bool) -> Vec<String> {
        let mut args = vec![
            "--tls-cert".into(),
            self.path("server.pem"),
            "--tls-key".into(),
            self.path("server.key"),
        ];
        if mutual {
            args.extend(["--client-ca".into(), self.path("ca.pem")]);
        }
        args
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A running `echo-server`; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server on 127.0.0.1:0 with `args` and waits for its
    /// startup line; panics with its stderr if it does not come up.
    fn start(args: &[String]) -> Server {
        let (child, log, lines) = spawn(args);
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line
                        .split("listening on ")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|a| a.parse().ok())
                    {
                        break addr;
                    }
                }
                Err(_) => panic!(
                    "echo-server did not start; stderr:\n{}",
                    log.lock().expect("log")
                ),
            }
        };
        Server { child, addr, log }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Waits up to [`TIMEOUT`] for `needle` in the server's stderr.
    fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if self.log.lock().expect("log").contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `echo-server --listen 127.0.0.1:0 ARGS` with stderr collected
/// into the returned log and forwarded line by line.
fn spawn(args: &[String]) -> (Child, Arc<Mutex<String>>, mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_echo-server"));
    cmd.args(["--listen", "127.0.0.1:0"]).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("ECHO_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn echo-server");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut log = sink.lock().expect("log");
            log.push_str(&line);
            log.push('\n');
            drop(log);
            let _ = tx.send(line);
        }
    });
    (child, log, rx)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// One Echo call over TLS with the crate's tonic client.
fn tls_echo(url: &str, files: &TlsFiles, message: &str) -> Result<String, ClientError> {
    let tls = files.load().expect("client TLS files");
    runtime().block_on(async {
        let channel = client::connect_tls(url, TIMEOUT, tls).await?;
        client::echo(channel, message, TIMEOUT).await
    })
}

/// One Echo call over plaintext h2c.
fn plain_echo(addr: SocketAddr, message: &str) -> Result<String, ClientError> {
    runtime().block_on(async {
        let channel = client::connect(&format!("http://{addr}"), TIMEOUT).await?;
        client::echo(channel, message, TIMEOUT).await
    })
}

#[test]
fn tls_echo_with_tonic() {
    let pki = Pki::new("echo");
    let server = Server::start(&pki.server_args(false));
    assert!(server.log().contains("tls=on"), "{}", server.log());
    let reply = tls_echo(&server.url(), &pki.client(None), "over TLS");
    assert_eq!(reply, Ok("You said: over TLS".into()));
    // localhost is in the certificate too.
    let by_name = format!("https://localhost:{}", server.addr.port());
    assert_eq!(
        tls_echo(&by_name, &pki.client(None), "by name"),
        Ok("You said: by name".into())
    );
    // A big message crosses many TLS records both ways.
    let big = "x".repeat(1 << 20);
    let reply = tls_echo(&server.url(), &pki.client(None), &big).expect("1 MiB echo");
    assert_eq!(reply.len(), big.len() + "You said: ".len());
}

#[test]
fn client_that_does_not_trust_the_ca_fails() {
    let pki = Pki::new("untrusted");
    let server = Server::start(&pki.server_args(false));
    let files = TlsFiles {
        ca: Some(pki.dir.join("rogue-ca.pem")),
        ..TlsFiles::default()
    };
    let err = tls_echo(&server.url(), &files, "hi").expect_err("untrusted server");
    assert_eq!(err.code, lean_grpc::status::Code::Unavailable, "{err}");
}

#[test]
fn plaintext_client_is_refused_and_server_keeps_serving() {
    let pki = Pki::new("plain");
    let server = Server::start(&pki.server_args(false));
    let err = plain_echo(server.addr, "hi").expect_err("plaintext must not work");
    assert_eq!(err.code, lean_grpc::status::Code::Unavailable, "{err}");
    assert!(
        server.wait_for_log("TLS handshake failed"),
        "{}",
        server.log()
    );
    assert_eq!(
        tls_echo(&server.url(), &pki.client(None), "still here"),
        Ok("You said: still here".into())
    );
}

#[test]
fn mutual_tls_rejects_missing_and_foreign_client_certificates() {
    let pki = Pki::new("mtls");
    let server = Server::start(&pki.server_args(true));
    assert!(server.log().contains("tls=mutual"), "{}", server.log());

    let err = tls_echo(&server.url(), &pki.client(None), "anonymous").expect_err("no cert");
    assert_eq!(err.code, lean_grpc::status::Code::Unavailable, "{err}");
    let err = tls_echo(&server.url(), &pki.client(Some("rogue")), "rogue").expect_err("rogue");
    assert_eq!(err.code, lean_grpc::status::Code::Unavailable, "{err}");
    assert!(
        server.wait_for_log("TLS handshake failed"),
        "{}",
        server.log()
    );

    assert_eq!(
        tls_echo(&server.url(), &pki.client(Some("client")), "trusted"),
        Ok("You said: trusted".into())
    );
}

#[test]
fn echo_client_binary_over_mutual_tls() {
    let pki = Pki::new("cli");
    let server = Server::start(&pki.server_args(true));
    let run = |extra: &[String]| {
        Command::new(env!("CARGO_BIN_EXE_echo-client"))
            .args(["--addr".to_string(), server.addr.to_string()])
            .args(extra)
            .args(["--timeout", "10s", "hello", "tls"])
            .stdin(Stdio::null())
            .output()
            .expect("run echo-client")
    };
    let ok = run(&[
        "--ca".into(),
        pki.path("ca.pem"),
        "--cert".into(),
        pki.path("client.pem"),
        "--key".into(),
        pki.path("client.key"),
    ]);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "You said: hello tls\n");

    let no_cert = run(&["--ca".into(), pki.path("ca.pem")]);
    assert_eq!(no_cert.status.code(), Some(2), "{no_cert:?}");
    let stderr = String::from_utf8_lossy(&no_cert.stderr);
    assert!(stderr.starts_with("error: UNAVAILABLE"), "{stderr}");

    let missing = run(&["--ca".into(), pki.path("nope.pem")]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("--ca ") && stderr.contains("nope.pem: cannot read"),
        "{stderr}"
    );
}

#[test]
fn unusable_tls_files_stop_the_server_with_one_line() {
    let pki = Pki::new("files");
    let cert = pki.path("server.pem");
    let cases = [
        (
            vec!["--tls-cert", "nope.pem", "--tls-key", "nope.key"],
            "--tls-cert nope.pem: cannot read",
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &cert],
            "server.pem: no private key in the file",
        ),
        (vec!["--tls-cert", &cert], "--tls-cert needs --tls-key"),
    ];
    for (args, want) in cases {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (mut child, log, _lines) = spawn(&args);
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "server kept running with {args:?}"
            );
            thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(1), "{args:?}");
        // The stderr reader may still be catching up after the exit.
        let until = Instant::now() + TIMEOUT;
        while !log.lock().expect("log").contains(want) && Instant::now() < until {
            thread::sleep(Duration::from_millis(20));
        }
        let text = log.lock().expect("log").clone();
        assert!(text.contains(want), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "one line: {text}");
    }
}

/// Python grpcio over TLS and mutual TLS, when `tests/interop/setup.sh` has
/// made `target/interop/venv` (required under CI=true).
#[test]
fn grpcio_over_tls() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/interop/venv/bin/python");
    let gen = root.join("target/interop/gen");
    if !python.exists() || !gen.join("echo_pb2_grpc.py").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "target/interop/venv is missing: run tests/interop/setup.sh first"
        );
        eprintln!("skipping grpcio_over_tls: run tests/interop/setup.sh to enable it");
        return;
    }
    let pki = Pki::new("grpcio");
    let script = root.join("tests/interop/python/tls_client.py");
    let run = |server: &Server, identity: Option<&str>| {
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .arg(format!("localhost:{}", server.addr.port()))
            .arg(pki.path("ca.pem"));
        if let Some(name) = identity {
            cmd.arg(pki.path(&format!("{name}.pem")))
                .arg(pki.path(&format!("{name}.key")));
        }
        cmd.env("PYTHONPATH", &gen)
            .stdin(Stdio::null())
            .output()
            .expect("run python")
    };

    let server = Server::start(&pki.server_args(false));
    let out = run(&server, None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "You said: grpcio over TLS\n"
    );

    let mutual = Server::start(&pki.server_args(true));
    let out = run(&mutual, Some("client"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "You said: grpcio over TLS\n"
    );
    let out = run(&mutual, None);
    assert!(
        !out.status.success(),
        "mTLS server answered a client without a certificate"
    );
    let out = run(&mutual, Some("rogue"));
    assert!(
        !out.status.success(),
        "mTLS server answered a foreign certificate"
    );
}
