//! TLS settings shared by both server flavours: the PEM files named by
//! `--tls-cert`, `--tls-key` and `--client-ca` become one
//! [`rustls::ServerConfig`] (ring provider, ALPN `h2`).
//!
//! With `--client-ca` the server requires a client certificate signed by
//! one of those CAs (mutual TLS): a client without one, or with one from
//! another CA, fails the handshake and never reaches HTTP/2.
//!
//! Every failure is a [`TlsError`] that reads as one line naming the option
//! and file, e.g. `--tls-key /etc/echo/key.pem: no private key in the file`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::Config;

/// The only application protocol the server speaks; a client that offers
/// ALPN without it fails the handshake (gRPC requires HTTP/2).
pub const ALPN_H2: &[u8] = b"h2";

/// Why the TLS settings could not be loaded: one line for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// Builds the server's TLS settings from `config`, or `None` when TLS is
/// off (no `--tls-cert`). Config validation guarantees cert and key come
/// together and a client CA only with them.
pub fn server_config(config: &Config) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let chain = load_certs("--tls-cert", cert)?;
    let key = load_key("--tls-key", key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS setup: {e}")))?;
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for der in load_certs("--client-ca", ca)? {
                roots.add(der).map_err(|e| {
                    file_error("--client-ca", ca, &format!("bad CA certificate: {e}"))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| file_error("--client-ca", ca, &e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut tls = builder.with_single_cert(chain, key).map_err(|e| {
        TlsError(format!(
            "--tls-cert {} / --tls-key {}: {e}",
            cert.display(),
            config.tls_key.as_deref().unwrap_or(Path::new("")).display()
        ))
    })?;
    tls.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Some(Arc::new(tls)))
}

fn file_error(option: &str, path: &Path, what: &str) -> TlsError {
    TlsError(format!("{option} {}: {what}", path.display()))
}

fn read(option: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_error(option, path, &format!("cannot read: {e}")))
}

/// Every certificate in the PEM file at `path` (at least one).
fn load_certs(option: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(option, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(option, path, &format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(option, path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in the PEM file at `path`.
fn load_key(option: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(option, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            file_error(option, path, "no private key in the file")
        }
        e => file_error(option, path, &format!("not valid PEM: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("lean-grpc-tls-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn file(&self, name: &str, contents: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn with_files(cert: PathBuf, key: PathBuf, ca: Option<PathBuf>) -> Config {
        Config {
            tls_cert: Some(cert),
            tls_key: Some(key),
            client_ca: ca,
            ..Config::default()
        }
    }

    fn error(config: &Config) -> String {
        match server_config(config) {
            Err(e) => e.0,
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn off_without_cert() {
        assert!(server_config(&Config::default()).unwrap().is_none());
    }

    #[test]
    fn loads_a_generated_identity_with_alpn_h2() {
        let dir = Scratch::new("ok");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let config = with_files(
            dir.file("cert.pem", &cert.pem()),
            dir.file("key.pem", &key.serialize_pem()),
            Some(dir.file("ca.pem", &ca.pem())),
        );
        let tls = server_config(&config).unwrap().unwrap();
        assert_eq!(tls.alpn_protocols, vec![b"h2".to_vec()]);
        // The key file must hold a key, not a certificate.
        let swapped = with_files(
            dir.file("cert2.pem", &cert.pem()),
            dir.file("key2.pem", &cert.pem()),
            None,
        );
        assert!(error(&swapped).ends_with("key2.pem: no private key in the file"));
        // A key that does not belong to the certificate.
        let other = rcgen::KeyPair::generate().unwrap();
        let mismatched = with_files(
            dir.file("cert3.pem", &cert.pem()),
            dir.file("key3.pem", &other.serialize_pem()),
            None,
        );
        assert!(error(&mismatched).starts_with("--tls-cert"));
    }

    #[test]
    fn file_errors_name_option_and_path() {
        let dir = Scratch::new("bad");
        let missing = dir.0.join("missing.pem");
        let empty = dir.file("empty.pem", "");
        let broken = dir.file(
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\n@@@\n-----END CERTIFICATE-----\n",
        );
        let e = error(&with_files(missing.clone(), empty.clone(), None));
        assert!(
            e.starts_with("--tls-cert ") && e.contains("missing.pem: cannot read:"),
            "{e}"
        );
        let e = error(&with_files(empty.clone(), empty.clone(), None));
        assert!(e.ends_with("empty.pem: no certificate in the file"), "{e}");
        let e = error(&with_files(broken, empty, None));
        assert!(e.contains("broken.pem: not valid PEM"), "{e}");
    }
}
