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
//! The Python test needs `tests/interop/setup.sh` to have run (scripts/test
//! does); without it the test is skipped, except under CI=true where it fails.

#![cfg(all(feature = "tls", feature = "client"))]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{run, Server, SERVER_BIN};
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

/// Starts `echo-server` with `args` (on 127.0.0.1:0).
fn start(args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

/// `https://ADDR` of a running server.
fn url(server: &Server) -> String {
    format!("https://{}", server.addr())
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
    let server = start(&pki.server_args(false));
    assert!(server.log().contains("tls=on"), "{}", server.log());
    let reply = tls_echo(&url(&server), &pki.client(None), "over TLS");
    assert_eq!(reply, Ok("You said: over TLS".into()));
    // localhost is in the certificate too.
    let by_name = format!("https://localhost:{}", server.addr().port());
    assert_eq!(
        tls_echo(&by_name, &pki.client(None), "by name"),
        Ok("You said: by name".into())
    );
    // A big message crosses many TLS records both ways.
    let big = "x".repeat(1 << 20);
    let reply = tls_echo(&url(&server), &pki.client(None), &big).expect("1 MiB echo");
    assert_eq!(reply.len(), big.len() + "You said: ".len());
}

#[test]
fn client_that_does_not_trust_the_ca_fails() {
    let pki = Pki::new("untrusted");
    let server = start(&pki.server_args(false));
    let files = TlsFiles {
        ca: Some(pki.dir.join("rogue-ca.pem")),
        ..TlsFiles::default()
    };
    let err = tls_echo(&url(&server), &files, "hi").expect_err("untrusted server");
    assert_eq!(err.code, lean_grpc::status::Code::Unavailable, "{err}");
}

#[test]
fn plaintext_client_is_refused_and_server_keeps_serving() {
    let pki = Pki::new("plain");
    let server = start(&pki.server_args(false));
    let err = plain_echo(server.addr(), "hi").expect_err("plaintext must not work");
    assert_eq!(err.code, lean_grpc::status::Code::Unavailable, "{err}");
    assert!(
        server.wait_for_log("TLS handshake failed", TIMEOUT),
        "{}",
        server.log()
    );
    assert_eq!(
        tls_echo(&url(&server), &pki.client(None), "still here"),
        Ok("You said: still here".into())
    );
}

#[test]
fn silent_client_is_closed_at_the_handshake_timeout() {
    use std::io::Read;
    let pki = Pki::new("silent");
    let mut args = pki.server_args(false);
    args.extend(["--handshake-timeout".into(), "300ms".into()]);
    let server = start(&args);
    let mut silent = std::net::TcpStream::connect(server.addr()).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the server to close, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed too late"
    );
    // The server still serves.
    assert_eq!(
        tls_echo(&url(&server), &pki.client(None), "after"),
        Ok("You said: after".into())
    );
}

#[test]
fn mutual_tls_rejects_missing_and_foreign_client_certificates() {
    let pki = Pki::new("mtls");
    let server = start(&pki.server_args(true));
    assert!(server.log().contains("tls=mutual"), "{}", server.log());

    let err = tls_echo(&url(&server), &pki.client(None), "anonymous").expect_err("no cert");
    assert_eq!(err.code, lean_grpc::status::Code::Unavailable, "{err}");
    let err = tls_echo(&url(&server), &pki.client(Some("rogue")), "rogue").expect_err("rogue");
    assert_eq!(err.code, lean_grpc::status::Code::Unavailable, "{err}");
    assert!(
        server.wait_for_log("TLS handshake failed", TIMEOUT),
        "{}",
        server.log()
    );

    assert_eq!(
        tls_echo(&url(&server), &pki.client(Some("client")), "trusted"),
        Ok("You said: trusted".into())
    );
}

#[test]
fn echo_client_binary_over_mutual_tls() {
    let pki = Pki::new("cli");
    let server = start(&pki.server_args(true));
    let addr = server.addr().to_string();
    let echo_client = |tls: &[&str]| {
        let mut args = vec!["--addr", &addr, "--timeout", "10s"];
        args.extend_from_slice(tls);
        args.extend(["hello", "tls"]);
        run(env!("CARGO_BIN_EXE_echo-client"), &args, &[], TIMEOUT)
    };
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );

    let ok = echo_client(&["--ca", &ca, "--cert", &cert, "--key", &key]);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert_eq!(ok.stdout, "You said: hello tls\n");

    let no_cert = echo_client(&["--ca", &ca]);
    assert_eq!(no_cert.code, Some(2), "{}", no_cert.stderr);
    assert!(
        no_cert.stderr.starts_with("error: UNAVAILABLE"),
        "{}",
        no_cert.stderr
    );

    let nope = pki.path("nope.pem");
    let missing = echo_client(&["--ca", &nope]);
    assert_eq!(missing.code, Some(2), "{}", missing.stderr);
    assert!(
        missing.stderr.contains("--ca ") && missing.stderr.contains("nope.pem: cannot read"),
        "{}",
        missing.stderr
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
    for (tls, want) in cases {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend(tls);
        let out = run(SERVER_BIN, &args, &[], TIMEOUT);
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    }
}

/// `echo-client bench` uses the client's own connect code, so it works over
/// mutual TLS, and every reply is checked.
#[test]
fn echo_client_bench_over_mutual_tls() {
    let pki = Pki::new("bench");
    let server = start(&pki.server_args(true));
    let addr = server.addr().to_string();
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let args = [
        "bench",
        "--addr",
        &addr,
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "--requests",
        "200",
        "--connections",
        "2",
        "--streams",
        "2",
        "--json",
    ];
    let out = run(env!("CARGO_BIN_EXE_echo-client"), &args, &[], TIMEOUT);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("\"ok\":200,\"failed\":0"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\"addr\":\"https://"), "{}", out.stdout);

    // Without a client certificate the server refuses the handshake: a clear error.
    let args = ["bench", "--addr", &addr, "--ca", &ca, "--requests", "5"];
    let out = run(env!("CARGO_BIN_EXE_echo-client"), &args, &[], TIMEOUT);
    assert_eq!(out.code, Some(2), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
}

/// The last line of a client's stderr (grpcio logs its own lines before ours).
fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or_default()
}

/// Python grpcio over TLS and mutual TLS, when `tests/interop/setup.sh` has
/// made `target/interop/venv` (required under CI=true).
#[test]
fn grpcio_over_tls() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/interop/venv/bin/python");
    let gen = root.join("target/interop/gen");
    if !python.exists() || !gen.join("echo_pb2_grpc.py").exists() {
        common::skip::skip(
            "tls::grpcio_over_tls",
            "target/interop/venv is missing: run tests/interop/setup.sh (scripts/test does)",
        );
        return;
    }
    let pki = Pki::new("grpcio");
    let script = root.join("tests/interop/python/tls_client.py");
    let (python, script, gen) = (
        python.display().to_string(),
        script.display().to_string(),
        gen.display().to_string(),
    );
    let call = |server: &Server, identity: Option<&str>| {
        let target = format!("localhost:{}", server.addr().port());
        let ca = pki.path("ca.pem");
        let files =
            identity.map(|n| (pki.path(&format!("{n}.pem")), pki.path(&format!("{n}.key"))));
        let mut args = vec![script.as_str(), &target, &ca];
        if let Some((cert, key)) = &files {
            args.extend([cert.as_str(), key.as_str()]);
        }
        run(
            &python,
            &args,
            &[("PYTHONPATH", &gen), ("PYTHONDONTWRITEBYTECODE", "1")],
            Duration::from_secs(60),
        )
    };

    let server = start(&pki.server_args(false));
    let out = call(&server, None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "You said: grpcio over TLS\n");

    let mutual = start(&pki.server_args(true));
    let out = call(&mutual, Some("client"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "You said: grpcio over TLS\n");
    let out = call(&mutual, None);
    assert_eq!(out.code, Some(1), "no client certificate: {}", out.stderr);
    assert!(
        last_line(&out.stderr).starts_with("UNAVAILABLE"),
        "{}",
        out.stderr
    );
    let out = call(&mutual, Some("rogue"));
    assert_eq!(out.code, Some(1), "foreign certificate: {}", out.stderr);
    assert!(
        last_line(&out.stderr).starts_with("UNAVAILABLE"),
        "{}",
        out.stderr
    );
}
