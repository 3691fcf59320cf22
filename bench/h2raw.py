"""Minimal HTTP/2 client pieces for the benchmark (Python standard library only).

Two jobs that h2load and grpcio cannot do precisely:

* `probe_echo`: one gRPC `echo.Echo/Reply("hello")` call on a fresh connection,
  used to time "process start -> first successful reply" with ~1 ms resolution;
* `IdleConns`: many HTTP/2 connections that complete the handshake (client
  preface + SETTINGS exchanged; acknowledgements counted) and then stay idle, answering
  the server's PINGs and SETTINGS so a keepalive does not close them.

Header blocks are sent as HPACK literals without indexing and without Huffman
coding (RFC 7541 6.2.2), which every decoder must accept. Server header blocks
are not decoded: a call counts as successful when the server sends exactly the
expected gRPC-framed reply message and then ends the stream with a HEADERS frame
(the trailers), without RST_STREAM or GOAWAY.
"""
import selectors
import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """RFC 7541 5.1 integer with an N-bit prefix; `first` holds the pattern bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name: str, value: str) -> bytes:
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    n, v = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v


def grpc_message(text: str) -> bytes:
    """gRPC length-prefixed message holding an EchoRequest/EchoReply {message: text}."""
    raw = text.encode()
    pb = b"\x0a" + varint(len(raw)) + raw
    return b"\x00" + struct.pack(">I", len(pb)) + pb


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def echo_request(host: str, port: int, message: str, stream: int = 1) -> bytes:
    block = b"".join(hpack_literal(k, v) for k, v in [
        (":method", "POST"), (":scheme", "http"), (":path", "/echo.Echo/Reply"),
        (":authority", f"{host}:{port}"), ("content-type", "application/grpc"),
        ("te", "trailers")])
    return (frame(HEADERS, END_HEADERS, stream, block)
            + frame(DATA, END_STREAM, stream, grpc_message(message)))


class FrameReader:
    """Splits a byte stream into (type, flags, stream, payload) frames."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data: bytes):
        self.buf += data
        frames = []
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + length:
                break
            ftype, flags = self.buf[3], self.buf[4]
            stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            frames.append((ftype, flags, stream, bytes(self.buf[9:9 + length])))
            del self.buf[:9 + length]
        return frames


def control_reply(ftype: int, flags: int, payload: bytes) -> bytes:
    """What a well-behaved client answers to a connection-level frame."""
    if ftype == SETTINGS and not flags & ACK:
        return frame(SETTINGS, ACK, 0)
    if ftype == PING and not flags & ACK:
        return frame(PING, ACK, 0, payload)
    return b""


def probe_echo(host: str, port: int, message: str = "hello", timeout: float = 2.0):
    """One Echo call on a new connection. Returns (ok, detail). Never raises on
    network errors (a refused connection is simply "not ok")."""
    want = grpc_message("You said: " + message)
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(PREFACE + frame(SETTINGS, 0, 0) + echo_request(host, port, message))
            reader, body = FrameReader(), b""
            while time.monotonic() < deadline:
                s.settimeout(max(deadline - time.monotonic(), 0.001))
                data = s.recv(65536)
                if not data:
                    return False, "connection closed"
                for ftype, flags, stream, payload in reader.feed(data):
                    reply = control_reply(ftype, flags, payload)
                    if reply:
                        s.sendall(reply)
                    if ftype == GOAWAY:
                        return False, "GOAWAY"
                    if stream != 1:
                        continue
                    if ftype == RST_STREAM:
                        return False, "RST_STREAM"
                    if ftype == DATA:
                        pad = payload[0] if flags & 0x8 else 0
                        body += payload[1:len(payload) - pad] if flags & 0x8 else payload
                    if ftype == HEADERS and flags & END_STREAM:
                        return body == want, "ok" if body == want else f"unexpected body {body!r}"
            return False, "timeout"
    except OSError as e:
        return False, f"{type(e).__name__}: {e}"


class IdleConns:
    """A set of idle HTTP/2 client connections, serviced by one selector loop."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.conns = {}  # fd -> dict(sock, reader, got_settings, got_ack, closed)
        self.failed_connect = 0

    def open(self, host: str, port: int, n: int, timeout: float = 30.0):
        """Opens n connections and waits until each has exchanged and acknowledged
        SETTINGS. Returns the number that completed the handshake."""
        for _ in range(n):
            try:
                s = socket.create_connection((host, port), timeout=timeout)
            except OSError:
                self.failed_connect += 1
                continue
            s.setblocking(False)
            c = {"sock": s, "reader": FrameReader(), "settings": False, "ack": False, "closed": False}
            try:
                s.send(PREFACE + frame(SETTINGS, 0, 0))
            except OSError:
                c["closed"] = True
            self.conns[s.fileno()] = c
            self.sel.register(s, selectors.EVENT_READ, c)
            self.pump(0)  # answer early SETTINGS while connecting the rest
        # Wait for every server SETTINGS; give the SETTINGS ACKs a little longer.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
                not c["closed"] and not c["settings"] for c in self.conns.values()):
            self.pump(0.2)
        ack_deadline = min(deadline, time.monotonic() + 2.0)
        while time.monotonic() < ack_deadline and self.pending():
            self.pump(0.2)
        return self.established()

    def pending(self):
        return sum(1 for c in self.conns.values()
                   if not c["closed"] and not (c["settings"] and c["ack"]))

    def established(self):
        """Open connections on which the server's SETTINGS arrived (and were acked by us).
        (Some servers, e.g. pajamax, ack the client's SETTINGS only later: see `acked`.)"""
        return sum(1 for c in self.conns.values() if not c["closed"] and c["settings"])

    def acked(self):
        """Open connections on which the server also acknowledged our SETTINGS."""
        return sum(1 for c in self.conns.values() if not c["closed"] and c["settings"] and c["ack"])

    def closed(self):
        return sum(1 for c in self.conns.values() if c["closed"])

    def pump(self, seconds: float):
        """Services the connections (SETTINGS/PING answers, close detection) for `seconds`."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            for key, _ in self.sel.select(timeout=max(left, 0)):
                c = key.data
                try:
                    data = c["sock"].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    c["closed"] = True
                    self.sel.unregister(c["sock"])
                    continue
                for ftype, flags, _stream, payload in c["reader"].feed(data):
                    if ftype == SETTINGS:
                        if flags & ACK:
                            c["ack"] = True
                        else:
                            c["settings"] = True
                    if ftype == GOAWAY:
                        c["closed"] = True
                    reply = control_reply(ftype, flags, payload)
                    if reply:
                        try:
                            c["sock"].send(reply)
                        except OSError:
                            c["closed"] = True
            if time.monotonic() >= end:
                return

    def close(self):
        for c in self.conns.values():
            try:
                if not c["closed"]:
                    self.sel.unregister(c["sock"])
            except (KeyError, ValueError):
                pass
            c["sock"].close()
        self.conns.clear()
        self.sel.close()
