//! TLS for the runtime-free driver: a non-blocking [`TcpStream`] and a
//! [`rustls::ServerConnection`] behind plain `Read`/`Write`, no runtime.
//!
//! rustls is itself sans-IO: it takes TLS bytes in (`read_tls`), hands
//! plaintext out (`reader`), takes plaintext in (`writer`) and has TLS bytes
//! to send (`write_tls`). [`TlsStream`] moves bytes between it and the
//! socket whenever the driver reads or writes, so the driver keeps its
//! readiness loop unchanged. Rules it keeps for that loop:
//!
//! * `read` returns `WouldBlock` only when the socket has nothing more; a
//!   read into a buffer of at least [`MIN_READ_BUF`] leaves no plaintext
//!   behind in rustls (one socket read decrypts at most one TLS wire
//!   buffer), so "wait until readable" is always right after it.
//! * `write` accepts plaintext only while rustls has no unsent records, so
//!   what waits for the socket is bounded (one write's worth), and it says
//!   `WouldBlock` while records are stuck; [`TlsStream::wants_write`] tells
//!   the driver to keep write interest for records queued by the handshake.
//! * A handshake failure (plaintext client, missing or wrong client
//!   certificate) is one warn line; the alert is sent best effort and the
//!   read fails, so the driver drops the connection.
//! * Dropping the stream sends `close_notify` best effort.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

/// Read buffers at least this large leave no decrypted bytes inside rustls
/// (rustls reads at most one TLS wire buffer, 18437 bytes, from the socket
/// at a time, and decrypts to no more than that).
pub const MIN_READ_BUF: usize = 20 * 1024;

/// A server-side TLS connection over a non-blocking socket.
pub struct TlsStream {
    /// The socket, in non-blocking mode.
    tcp: TcpStream,
    /// rustls' state for this connection.
    tls: ServerConnection,
    /// The peer, for the handshake failure line.
    peer: Option<SocketAddr>,
}

impl TlsStream {
    /// Starts a server handshake on an accepted, non-blocking `tcp`.
    pub fn new(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        let peer = tcp.peer_addr().ok();
        Ok(TlsStream { tcp, tls, peer })
    }

    /// The socket, for registering with the poller.
    pub fn socket(&self) -> &TcpStream {
        &self.tcp
    }

    /// Whether the TLS handshake is still in progress.
    pub fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Whether TLS records (handshake messages, alerts, encrypted output)
    /// wait for room in the socket: keep write interest while true.
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Writes queued TLS records to the socket until it is empty or full.
    fn send_records(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Handles a TLS protocol failure: warn once if it ended the handshake,
    /// send the alert rustls queued, and turn it into an I/O error.
    fn failed(&mut self, e: rustls::Error) -> io::Error {
        if self.tls.is_handshaking() {
            match self.peer {
                Some(peer) => crate::warn!("{peer}: TLS handshake failed: {e}"),
                None => crate::warn!("TLS handshake failed: {e}"),
            }
        }
        let _ = self.send_records();
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

impl Read for TlsStream {
    /// Reads plaintext. `Ok(0)` is the end of the stream (close_notify or
    /// the socket's EOF); `WouldBlock` means wait until the socket is readable.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // EOF without close_notify: for HTTP/2 (which frames its own
                // end) this is an ordinary close.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => {
                    // EOF: let rustls see it, then the reader reports it.
                    self.tls.process_new_packets().map_err(|e| self.failed(e))?;
                    if self.tls.is_handshaking() {
                        return Ok(0);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.tls.process_new_packets().map_err(|e| self.failed(e))?;
            // Handshake replies go out now; a full socket keeps them queued
            // for the driver's next flush (see `wants_write`).
            match self.send_records() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsStream {
    /// Encrypts up to one buffer's worth of `buf` and sends it; `WouldBlock`
    /// while earlier records are still waiting for the socket.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send_records()?;
        let n = self.tls.writer().write(buf)?;
        match self.send_records() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if n == 0 && !buf.is_empty() {
            // rustls' buffer is full (only before the handshake completes).
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Sends queued TLS records; `WouldBlock` if the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        self.send_records()
    }
}

impl Drop for TlsStream {
    fn drop(&mut self) {
        if !self.tls.is_handshaking() {
            self.tls.send_close_notify();
        }
        let _ = self.send_records();
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;
    use std::time::{Duration, Instant};

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

    use super::*;

    /// A server config for "localhost" and a client config trusting it.
    fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec()];
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec()];
        (Arc::new(server), Arc::new(client))
    }

    /// Serves one connection the way the driver does (non-blocking reads
    /// and writes, spinning politely on WouldBlock): echoes every byte
    /// back until EOF, then returns how many it echoed.
    fn echo_server(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<usize> {
        let (tcp, _) = listener.accept()?;
        tcp.set_nonblocking(true)?;
        let mut tls = TlsStream::new(tcp, config)?;
        let mut buf = vec![0; 32 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut echoed = 0;
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            let mut idle = true;
            match tls.read(&mut buf) {
                Ok(0) => {
                    while !pending.is_empty() || tls.wants_write() {
                        match tls.write(&pending) {
                            Ok(n) => drop(pending.drain(..n)),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                thread::sleep(Duration::from_millis(1))
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    return Ok(echoed);
                }
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    idle = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if !pending.is_empty() {
                match tls.write(&pending) {
                    Ok(n) => {
                        pending.drain(..n);
                        echoed += n;
                        idle = false;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            } else if tls.wants_write() {
                match tls.flush() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            if idle {
                thread::sleep(Duration::from_millis(1));
            }
        }
        Err(io::ErrorKind::TimedOut.into())
    }

    #[test]
    fn echoes_a_megabyte_through_tls_over_a_non_blocking_socket() {
        let (server_config, client_config) = configs();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || echo_server(listener, server_config));

        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(client_config, name).unwrap();
        let mut client = StreamOwned::new(conn, tcp);
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        // Write and read in turns so neither side's socket buffer fills up.
        let mut back = Vec::new();
        for chunk in data.chunks(64 * 1024) {
            client.write_all(chunk).unwrap();
            let mut part = vec![0; chunk.len()];
            client.read_exact(&mut part).unwrap();
            back.extend_from_slice(&part);
        }
        assert_eq!(client.conn.alpn_protocol(), Some(&b"h2"[..]));
        assert!(back == data, "echoed bytes differ");
        client.conn.send_close_notify();
        client.flush().unwrap();
        client.sock.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(server.join().unwrap().unwrap(), data.len());
        // The server's close_notify arrives as a clean end of stream.
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).unwrap(), 0);
    }

    #[test]
    fn plaintext_client_fails_the_handshake() {
        let (server_config, _) = configs();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || echo_server(listener, server_config));
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
        let err = server.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }
}
