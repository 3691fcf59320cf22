//! What a runtime-free connection reads and writes through: the plain
//! socket, or TLS over it (`readiness::tls::TlsStream`, feature `tls`). Both
//! are non-blocking and register with the poller by their socket.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::io::{AsRawFd, RawFd};

/// A connection's byte stream.
pub enum Transport {
    /// Plaintext HTTP/2 (h2c).
    Plain(TcpStream),
    /// HTTP/2 over TLS.
    #[cfg(feature = "tls")]
    Tls(Box<super::tls::TlsStream>),
}

impl Transport {
    /// Whether bytes the transport made itself (TLS handshake messages,
    /// records encrypted earlier) wait for room in the socket: the driver
    /// keeps write interest while this is true, even with nothing of its own
    /// to send.
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.wants_write(),
        }
    }

    /// The socket underneath, for lingering after the close.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.socket(),
        }
    }

    /// Whether a TLS handshake is still in progress (plaintext written
    /// meanwhile waits inside rustls); always false for plain sockets.
    pub fn is_handshaking(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.is_handshaking(),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.write(buf),
        }
    }

    /// Sends what the transport has queued (TLS records); plain sockets
    /// queue nothing.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.flush(),
        }
    }
}

impl AsRawFd for Transport {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Transport::Plain(tcp) => tcp.as_raw_fd(),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.socket().as_raw_fd(),
        }
    }
}
