"""Soak driver for bench/soak (GitHub issue #6): load, abuse, sampling, report.

Run through bench/soak, which builds the servers and sets PYTHONPATH to the
interop stubs. Roles (first argument):

  soak.py --minutes N --out DIR FLAVOUR=BINARY...   the driver (default)
  soak.py grpc-worker ADDR STATUS_FILE END_EPOCH SEED
  soak.py abuse-worker ADDR STATUS_FILE END_EPOCH SEED

The driver starts every server at once on 127.0.0.1:0 (port read from the
"listening on ADDR" stderr line), gives each one h2load + a grpcio worker +
an abuse worker (separate processes, so the GIL of one does not slow the
others or the sampler), samples /proc every SAMPLE_S seconds, then stops the
servers with SIGTERM and writes samples.csv, summary.md and chart.svg.
Only the standard library is used outside the workers (which use grpcio and
hpack from the interop venv).
"""

import json
import math
import os
import random
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections import Counter

SAMPLE_S = 5.0
IDLE_S = 15.0  # quiet sampling before load starts and after it stops
# Server limits for the soak: realistic for a small board.
MAX_MESSAGE = 256 * 1024
SERVER_ARGS = [
    "--listen", "127.0.0.1:0",
    "--max-connections", "512",
    "--max-message-size", str(MAX_MESSAGE),
    "--handshake-timeout", "5s",
    "--idle-timeout", "60s",
    "--log", "info",  # the "listening on" line is info
]
# Normal echo sizes stay below the limit with room for the reply prefix and
# protobuf framing; oversize ones must get RESOURCE_EXHAUSTED.
NORMAL_MAX = 250_000
OVERSIZE = 300_000
# Growth tolerances for the PASS / ATTENTION verdict.
RSS_TOL_KIB = 2048
RSS_TOL_FRAC = 0.10
FD_TOL = 4

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ECHO_PATH = "/echo.Echo/Reply"


# ---------------------------------------------------------------- helpers


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def grpc_echo_body(text):
    """A length-prefixed gRPC message holding EchoRequest{message=text}."""
    raw = text.encode()
    pb = b"\x0a" + varint(len(raw)) + raw
    return b"\x00" + struct.pack(">I", len(pb)) + pb


def frame(ftype, flags, sid, payload, length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0, 1, 3, 4, 6, 7
END_STREAM, END_HEADERS = 0x1, 0x4


def settings(pairs=()):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def request_headers(encoder, path=ECHO_PATH):
    return encoder.encode([
        (":method", "POST"), (":scheme", "http"), (":path", path),
        (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
        ("te", "trailers"),
    ])


# ------------------------------------------------------------ grpc worker


def grpc_worker(addr, status_path, end, seed):
    """Normal clients: echo (random sizes, some oversize) and health calls."""
    import grpc
    import echo_pb2
    import echo_pb2_grpc
    import health_pb2
    import health_pb2_grpc

    lock = threading.Lock()
    counts = Counter()
    errors = Counter()
    opts = [("grpc.max_send_message_length", 1 << 20),
            ("grpc.max_receive_message_length", 1 << 20)]

    def one_thread(k):
        rng = random.Random(seed * 100 + k)
        channel = None
        calls = 0
        while time.time() < end:
            if channel is None or calls % 50 == 0:
                if channel is not None:
                    channel.close()
                channel = grpc.insecure_channel(addr, options=opts)
                echo = echo_pb2_grpc.EchoStub(channel)
                health = health_pb2_grpc.HealthStub(channel)
            calls += 1
            r = rng.random()
            try:
                if r < 0.05:
                    kind = "oversize"
                    try:
                        echo.Reply(echo_pb2.EchoRequest(message="o" * OVERSIZE), timeout=10)
                        ok, why = False, "oversize accepted"
                    except grpc.RpcError as e:
                        ok = e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                        why = str(e.code())
                elif r < 0.25:
                    kind = "health"
                    resp = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
                    ok = resp.status == health_pb2.HealthCheckResponse.SERVING
                    why = "not SERVING"
                else:
                    kind = "echo"
                    n = int(NORMAL_MAX * rng.random() ** 3)
                    msg = os.urandom(n // 2 + 1).hex()[:n]
                    resp = echo.Reply(echo_pb2.EchoRequest(message=msg), timeout=10)
                    ok = resp.message == "You said: " + msg
                    why = "wrong reply"
            except grpc.RpcError as e:
                ok, why = False, str(e.code())
            except Exception as e:  # noqa: BLE001 - counted, never fatal
                ok, why = False, type(e).__name__
            with lock:
                counts[kind + ("_ok" if ok else "_fail")] += 1
                if not ok:
                    errors[kind + ": " + why] += 1
            time.sleep(0.02)
        if channel is not None:
            channel.close()

    threads = [threading.Thread(target=one_thread, args=(k,), daemon=True) for k in range(3)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        with lock:
            write_json_atomic(status_path, {"counts": dict(counts), "errors": dict(errors)})
        time.sleep(1.0)
    with lock:
        write_json_atomic(status_path, {"counts": dict(counts), "errors": dict(errors), "done": True})


# ----------------------------------------------------------- abuse worker


def connect(addr, timeout=5.0):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def abort(s):
    """Close with RST (SO_LINGER 0): an abrupt disconnect."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def drain(s, timeout=3.0, max_bytes=None):
    """Reads until the server closes, `timeout` passes or `max_bytes` arrive.

    Returns how it ended: "goaway:<code>", "closed", "reset", "timeout" or
    "read" (max_bytes reached)."""
    buf = bytearray()
    deadline = time.time() + timeout
    goaway = None
    how = "timeout"
    while time.time() < deadline:
        s.settimeout(max(0.01, deadline - time.time()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            how = "reset"
            break
        if not chunk:
            how = "closed"
            break
        buf += chunk
        if max_bytes is not None and len(buf) >= max_bytes:
            how = "read"
            break
    # Scan frames (after any server preface) for a GOAWAY.
    i = 0
    while i + 9 <= len(buf):
        n = int.from_bytes(buf[i:i + 3], "big")
        if buf[i + 3] == GOAWAY and i + 9 + 8 <= len(buf):
            goaway = int.from_bytes(buf[i + 13:i + 17], "big")
        i += 9 + n
    if goaway is not None and how != "read":
        return f"goaway:{goaway}"
    return how


def abuse_garbage(addr, rng):
    s = connect(addr)
    try:
        if rng.random() < 0.5:
            s.sendall(os.urandom(rng.randint(1, 4096)))
        else:  # valid preface, then junk where frames should be
            s.sendall(PREFACE + settings() + os.urandom(rng.randint(9, 2048)))
        return drain(s)
    finally:
        s.close()


def abuse_rapid_reset(addr, rng):
    import hpack
    s = connect(addr)
    try:
        enc = hpack.Encoder()
        s.sendall(PREFACE + settings())
        out = bytearray()
        for sid in range(1, 2 * 2000, 2):
            out += frame(HEADERS, END_HEADERS, sid, request_headers(enc))
            out += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))  # CANCEL
            if len(out) > 32768:
                s.sendall(out)
                out.clear()
        s.sendall(out)
        return drain(s)
    except OSError:
        return "reset"
    finally:
        s.close()


def abuse_mid_request(addr, rng):
    """Streams whose DATA stops half way, then an abrupt disconnect."""
    import hpack
    s = connect(addr)
    enc = hpack.Encoder()
    try:
        s.sendall(PREFACE + settings())
        for sid in (1, 3, 5):
            body = grpc_echo_body("r" * 100_000)
            s.sendall(frame(HEADERS, END_HEADERS, sid, request_headers(enc))
                      + frame(DATA, 0, sid, body[: rng.randint(1, 8000)]))
        time.sleep(rng.random() * 0.2)
        return "aborted"
    except OSError:
        return "reset"
    finally:
        abort(s)


def abuse_mid_response(addr, rng):
    """Full requests, a 1 KiB stream window so replies stall, read a bit, abort."""
    import hpack
    s = connect(addr)
    enc = hpack.Encoder()
    try:
        s.sendall(PREFACE + settings([(4, 1024)]))  # SETTINGS_INITIAL_WINDOW_SIZE
        for sid in (1, 3, 5):
            body = grpc_echo_body("m" * 16000)
            s.sendall(frame(HEADERS, END_HEADERS, sid, request_headers(enc))
                      + frame(DATA, END_STREAM, sid, body))
        return drain(s, timeout=2.0, max_bytes=rng.randint(100, 3000))
    except OSError:
        return "reset"
    finally:
        abort(s)


def abuse_ping_flood(addr, rng):
    """PINGs as fast as the socket takes them, never reading the ACKs."""
    s = connect(addr)
    try:
        s.sendall(PREFACE + settings())
        burst = b"".join(frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(1000))
        s.settimeout(2.0)
        stop = time.time() + 5.0
        while time.time() < stop:
            s.sendall(burst)  # raises socket.timeout once the server stops reading
        return "sent-5s"
    except socket.timeout:
        return "blocked"
    except OSError:
        return "reset"
    finally:
        abort(s)


def abuse_oversize_frame(addr, rng):
    """A frame declaring 1 MiB, above the 16 KiB SETTINGS_MAX_FRAME_SIZE."""
    s = connect(addr)
    try:
        ftype = rng.choice([DATA, HEADERS, SETTINGS])
        sid = 0 if ftype == SETTINGS else 1
        s.sendall(PREFACE + settings() + frame(ftype, 0, sid, os.urandom(20000), length=1 << 20))
        return drain(s)
    except OSError:
        return "reset"
    finally:
        s.close()


def abuse_bad_hpack(addr, rng):
    s = connect(addr)
    try:
        block = rng.choice([
            b"\x80",                          # indexed field 0: invalid
            b"\xff\xff\xff\xff\xff\x0f",      # index far past both tables
            b"\x3f\xff\xff\xff\xff\x0f",      # table size update above the limit
            b"\x40\x85\xff\xff\xff\xff\xff",  # literal with bad Huffman padding
            b"\x00\x7f\xff\xff\xff\x0f",      # string length past the block
        ])
        s.sendall(PREFACE + settings() + frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
        return drain(s)
    except OSError:
        return "reset"
    finally:
        s.close()


def abuse_conn_churn(addr, rng):
    """40 connections opened at once, half with a preface, all dropped."""
    socks = []
    try:
        for i in range(40):
            s = connect(addr)
            if i % 2:
                s.sendall(PREFACE + settings())
            socks.append(s)
        return "dropped"
    except OSError:
        return "refused"
    finally:
        for s in socks:
            abort(s)


ABUSES = [abuse_garbage, abuse_rapid_reset, abuse_mid_request, abuse_mid_response,
          abuse_ping_flood, abuse_oversize_frame, abuse_bad_hpack, abuse_conn_churn]


def abuse_worker(addr, status_path, end, seed):
    rng = random.Random(seed)
    lock = threading.Lock()
    outcomes = Counter()
    slow = Counter()

    def slowloris():
        """Keeps up to 16 connections that trickle the preface, one byte per
        socket every 2 s. At most one new socket per 0.25 s, so their
        handshake timeouts are spread out rather than all at once."""
        pool = []  # [socket, bytes sent, last send time]
        while time.time() < end:
            if len(pool) < 16:
                try:
                    pool.append([connect(addr), 0, 0.0])
                    with lock:
                        slow["opened"] += 1
                except OSError:
                    with lock:
                        slow["connect-failed"] += 1
            now = time.time()
            for entry in list(pool):
                s, sent, at = entry
                if now - at < 2.0:
                    continue
                try:
                    s.sendall(PREFACE[sent % len(PREFACE):][:1])
                    entry[1], entry[2] = sent + 1, now
                    s.settimeout(0.001)
                    if s.recv(4096) == b"":
                        raise ConnectionResetError
                except socket.timeout:
                    continue
                except OSError:
                    with lock:
                        slow["closed-by-server"] += 1
                    pool.remove(entry)
                    s.close()
            time.sleep(0.25)
        for s, _, _ in pool:
            s.close()

    t = threading.Thread(target=slowloris, daemon=True)
    t.start()
    i = 0
    last = 0.0
    while time.time() < end:
        fn = ABUSES[i % len(ABUSES)]
        i += 1
        name = fn.__name__[len("abuse_"):]
        try:
            how = fn(addr, rng)
        except OSError as e:
            how = "connect:" + type(e).__name__
        except Exception as e:  # noqa: BLE001 - a harness bug must not stop the soak
            how = "harness:" + type(e).__name__
        with lock:
            outcomes[f"{name} {how}"] += 1
        if time.time() - last > 1.0:
            with lock:
                write_json_atomic(status_path, {"outcomes": dict(outcomes), "slowloris": dict(slow)})
            last = time.time()
        time.sleep(0.05)
    t.join(timeout=5)
    with lock:
        write_json_atomic(status_path, {"outcomes": dict(outcomes), "slowloris": dict(slow), "done": True})


# ------------------------------------------------------------------ driver


def proc_sample(pid):
    """VmRSS, VmHWM (KiB), threads, open fds and CPU seconds of `pid`."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
            elif k == "Threads":
                out[k] = int(v)
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def start_server(flavour, binary, work):
    log = open(os.path.join(work, f"server-{flavour}.log"), "w+")
    p = subprocess.Popen([binary] + SERVER_ARGS, stdout=log, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 15
    addr = None
    while time.time() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        log.write(line)
        m = re.search(r"listening on (\S+)", line)
        if m:
            addr = m.group(1)
            break
    if addr is None:
        p.kill()
        raise SystemExit(f"soak: {flavour} server did not report 'listening on ADDR'")

    def pump():  # keep draining stderr into the log so the server never blocks
        for line in p.stderr:
            log.write(line)
            log.flush()
    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return p, addr, t


def h2load_cmd(addr, secs, body_path):
    return ["h2load", "-c", "4", "-m", "4", "--rps", "20", "-D", str(int(secs)),
            "-d", body_path, "-H", "content-type: application/grpc", "-H", "te: trailers",
            f"http://{addr}{ECHO_PATH}"]


def parse_h2load(text, reply_len):
    """h2load's counts. A gRPC error is HTTP 200 too, so a call is ok only if its reply
    arrived: the DATA bytes must be `ok` framed replies of `reply_len` bytes; the
    calls without one count as failed (h2load cannot read grpc-status trailers)."""
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    d = re.search(r"traffic: .*\((\d+)\) data", text)
    if not m or not d:
        return {"h2load_parse_error": 1}
    total, _, done, ok, failed, errored, tmo = (int(x) for x in m.groups())
    replied = min(ok, int(d.group(1)) // reply_len)
    return {"ok": replied, "failed": failed + errored + tmo + (ok - replied), "total": total, "done": done}


def median_in(samples, key, t0, t1):
    vals = [s[key] for s in samples if t0 <= s["t"] < t1]
    return statistics.median(vals) if vals else None


def verdict_windows(minutes):
    """(baseline window, final window) in seconds of load time."""
    T = minutes * 60.0
    if minutes >= 4:
        return (120.0, 180.0), (T - 60.0, T + 1)
    return (0.25 * T, 0.5 * T), (0.75 * T, T + 1)


def driver(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", help="scratch dir: worker status, server logs (default OUT/.work)")
    ap.add_argument("servers", nargs="+", help="FLAVOUR=BINARY")
    a = ap.parse_args(argv)
    out = a.out
    os.makedirs(out, exist_ok=True)
    work = a.work or os.path.join(out, ".work")
    os.makedirs(work, exist_ok=True)
    load_s = a.minutes * 60.0
    started_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())

    body_path = os.path.join(work, "h2load-body.bin")
    with open(body_path, "wb") as f:
        f.write(grpc_echo_body("h2load soak " + "x" * 1000))
    reply_len = len(grpc_echo_body("You said: h2load soak " + "x" * 1000))

    flav = {}
    for spec in a.servers:
        name, _, binary = spec.partition("=")
        p, addr, pump = start_server(name, binary, work)
        flav[name] = {"proc": p, "addr": addr, "binary": binary, "exit": None, "pump": pump}
        print(f"soak: {name} server pid {p.pid} on {addr}", flush=True)

    samples = []  # dicts: t, phase, flavour, metrics..., counters
    t_zero = time.time() + IDLE_S  # load starts after a quiet baseline

    def sample(phase):
        now = time.time()
        for name, f in flav.items():
            p = f["proc"]
            if p.poll() is not None:
                if f["exit"] is None:
                    f["exit"] = p.returncode
                    f["died_at"] = now - t_zero
                    print(f"soak: !!! {name} server exited with {p.returncode} "
                          f"at t={now - t_zero:.0f}s", flush=True)
                continue
            try:
                m = proc_sample(p.pid)
            except OSError:
                continue
            g = read_json(os.path.join(work, f"grpc-{name}.json")).get("counts", {})
            ok = sum(v for k, v in g.items() if k.endswith("_ok"))
            bad = sum(v for k, v in g.items() if k.endswith("_fail"))
            ab = read_json(os.path.join(work, f"abuse-{name}.json")).get("outcomes", {})
            samples.append({
                "t": round(now - t_zero, 1), "phase": phase, "flavour": name,
                "rss_kib": m["VmRSS"], "hwm_kib": m["VmHWM"], "fds": m["fds"],
                "threads": m["Threads"], "cpu_s": round(m["cpu_s"], 2),
                "grpc_ok": ok, "grpc_failed": bad, "abuse_runs": sum(ab.values()),
            })

    # Quiet baseline.
    while time.time() < t_zero:
        sample("idle-before")
        time.sleep(SAMPLE_S)

    end = t_zero + load_s
    workers = []
    for i, (name, f) in enumerate(flav.items()):
        addr = f["addr"]
        for role in ("grpc", "abuse"):
            st = os.path.join(work, f"{role}-{name}.json")
            workers.append((name, role, subprocess.Popen(
                [sys.executable, "-u", __file__, f"{role}-worker", addr, st, str(end), str(i + 1)],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"{role}-{name}.err"), "w"))))
        f["h2load"] = subprocess.Popen(h2load_cmd(addr, load_s, body_path),
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(f"soak: load + abuse running for {a.minutes:g} min (until "
          f"{time.strftime('%H:%M:%S', time.gmtime(end))} UTC)", flush=True)

    next_t = time.time()
    last_print = 0.0
    while time.time() < end + 1:
        sample("load")
        if time.time() - last_print >= 60:
            last_print = time.time()
            for name in flav:
                s = [x for x in samples if x["flavour"] == name]
                if s:
                    x = s[-1]
                    print(f"soak: t={x['t']:5.0f}s {name:13} rss={x['rss_kib'] / 1024:6.1f} MiB "
                          f"fds={x['fds']:3} threads={x['threads']} cpu={x['cpu_s']:.0f}s "
                          f"grpc ok/failed={x['grpc_ok']}/{x['grpc_failed']} "
                          f"abuse={x['abuse_runs']}", flush=True)
        next_t += SAMPLE_S
        time.sleep(max(0.0, next_t - time.time()))

    for name, f in flav.items():
        try:
            txt, _ = f["h2load"].communicate(timeout=60)
        except subprocess.TimeoutExpired:
            f["h2load"].kill()
            txt, _ = f["h2load"].communicate()
        with open(os.path.join(out, f"h2load-{name}.txt"), "w") as fh:
            fh.write(txt)
        f["h2load_res"] = parse_h2load(txt, reply_len)
    for name, role, w in workers:
        try:
            w.wait(timeout=60)
        except subprocess.TimeoutExpired:
            w.kill()

    # Quiet tail: every connection is gone, fds should be back to the start.
    quiet_end = time.time() + IDLE_S
    while time.time() < quiet_end:
        sample("idle-after")
        time.sleep(SAMPLE_S)
    sample("idle-after")

    for name, f in flav.items():
        p = f["proc"]
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                f["exit_note"] = "did not exit 20 s after SIGTERM, killed"
            f["exit_after_term"] = p.returncode
        f["pump"].join(timeout=5)  # the last log lines (shutdown complete) too

    write_results(out, a.minutes, started_at, flav, samples, work)
    crashed = [n for n, f in flav.items() if f["exit"] is not None]
    return 1 if crashed else 0


# ----------------------------------------------------------------- output


def write_results(out, minutes, started_at, flav, samples, work):
    cols = ["t", "phase", "flavour", "rss_kib", "hwm_kib", "fds", "threads", "cpu_s",
            "grpc_ok", "grpc_failed", "abuse_runs"]
    with open(os.path.join(out, "samples.csv"), "w") as f:
        f.write(",".join(cols) + "\n")
        for s in samples:
            f.write(",".join(str(s[c]) for c in cols) + "\n")

    (b0, b1), (e0, e1) = verdict_windows(minutes)
    lines = [f"# Soak run {started_at}", "",
             f"{minutes:g} min of load + abuse per server, all flavours at once, "
             f"sampled every {SAMPLE_S:g} s; {IDLE_S:g} s quiet before and after.", "",
             "Server flags: `" + " ".join(SERVER_ARGS) + "`", ""]
    lines += ["| flavour | RSS start | RSS min | RSS max | RSS end | VmHWM end | fds start | fds min "
              "| fds max | fds end (load) | fds idle before → after | threads max | CPU s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    mib = lambda k: f"{k / 1024:.1f} MiB"  # noqa: E731
    for name, f in flav.items():
        s = [x for x in samples if x["flavour"] == name]
        ld = [x for x in s if x["phase"] == "load"]
        if not ld:
            lines.append(f"| {name} | no samples | | | | | | | | | | | |")
            continue
        ib = [x["fds"] for x in s if x["phase"] == "idle-before"]
        ia = [x["fds"] for x in s if x["phase"] == "idle-after"]
        rss = [x["rss_kib"] for x in ld]
        fds = [x["fds"] for x in ld]
        lines.append(
            f"| {name} | {mib(rss[0])} | {mib(min(rss))} | {mib(max(rss))} | {mib(rss[-1])} "
            f"| {mib(s[-1]['hwm_kib'])} | {fds[0]} | {min(fds)} | {max(fds)} | {fds[-1]} "
            f"| {ib[-1] if ib else '?'} → {ia[-1] if ia else '?'} "
            f"| {max(x['threads'] for x in s)} | {s[-1]['cpu_s']:.1f} |")
        rb, re_ = median_in(ld, "rss_kib", b0, b1), median_in(ld, "rss_kib", e0, e1)
        fb, fe = median_in(ld, "fds", b0, b1), median_in(ld, "fds", e0, e1)
        v = {"name": name, "rss_base": rb, "rss_end": re_, "fd_base": fb, "fd_end": fe}
        if None not in (rb, re_, fb, fe):
            grow = re_ - rb
            rss_ok = grow <= max(RSS_TOL_KIB, RSS_TOL_FRAC * rb)
            fd_ok = fe - fb <= FD_TOL
            idle_ok = not ib or not ia or ia[-1] <= ib[-1]
            v["pass"] = rss_ok and fd_ok and idle_ok and f["exit"] is None
        verdicts.append(v)

    lines += ["", f"Growth: median of load seconds [{b0:.0f}, {b1:.0f}) vs median of "
              f"[{e0:.0f}, {min(e1, minutes * 60):.0f}]. PASS if RSS grew at most "
              f"max({RSS_TOL_KIB // 1024} MiB, {RSS_TOL_FRAC:.0%}), fds at most {FD_TOL}, "
              "idle fds after ≤ idle fds before, and the server never exited.", "",
              "| flavour | RSS median base → end | RSS growth | fds median base → end | verdict |",
              "|---|---|---|---|---|"]
    verdict_text = []
    for v in verdicts:
        if "pass" not in v:
            lines.append(f"| {v['name']} | (windows empty) | | | n/a |")
            continue
        word = "PASS" if v["pass"] else "ATTENTION"
        g = v["rss_end"] - v["rss_base"]
        lines.append(f"| {v['name']} | {mib(v['rss_base'])} → {mib(v['rss_end'])} | "
                     f"{g / 1024:+.2f} MiB ({g / v['rss_base']:+.1%}) | {v['fd_base']:g} → "
                     f"{v['fd_end']:g} | **{word}** |")
        verdict_text.append(f"{word} {v['name']}: RSS {mib(v['rss_base'])} -> {mib(v['rss_end'])} "
                            f"({g / 1024:+.2f} MiB), fds {v['fd_base']:g} -> {v['fd_end']:g}")

    lines += ["", "## Normal calls", "",
              "| flavour | grpcio echo ok/failed | oversize → RESOURCE_EXHAUSTED ok/failed "
              "| health ok/failed | h2load ok/failed | success rate |",
              "|---|---|---|---|---|---|"]
    for name, f in flav.items():
        g = read_json(os.path.join(work, f"grpc-{name}.json"))
        c = g.get("counts", {})
        h = f.get("h2load_res", {})
        ok = sum(v for k, v in c.items() if k.endswith("_ok")) + h.get("ok", 0)
        bad = sum(v for k, v in c.items() if k.endswith("_fail")) + h.get("failed", 0)
        rate = f"{ok / (ok + bad):.4%}" if ok + bad else "n/a"
        lines.append(f"| {name} | {c.get('echo_ok', 0)}/{c.get('echo_fail', 0)} "
                     f"| {c.get('oversize_ok', 0)}/{c.get('oversize_fail', 0)} "
                     f"| {c.get('health_ok', 0)}/{c.get('health_fail', 0)} "
                     f"| {h.get('ok', '?')}/{h.get('failed', '?')} | {rate} |")
        f["errors"] = g.get("errors", {})
    for name, f in flav.items():
        if f.get("errors"):
            lines += ["", f"Failed normal calls, {name}: " + ", ".join(
                f"{k} ×{v}" for k, v in sorted(f["errors"].items()))]

    lines += ["", "## Abusive clients", "",
              "Outcome counts (`goaway:N` = GOAWAY with error code N then close; `closed` = "
              "server closed; `timeout` = still open after 3 s, client closed; `blocked` = "
              "server stopped reading; `read`/`aborted`/`dropped` = client disconnected "
              "on purpose).", ""]
    for name, f in flav.items():
        ab = read_json(os.path.join(work, f"abuse-{name}.json"))
        oc = ab.get("outcomes", {})
        lines.append(f"- **{name}**: {sum(oc.values())} abusive connections; "
                     + ", ".join(f"{k} ×{v}" for k, v in sorted(oc.items()))
                     + "; slowloris: " + ", ".join(
                         f"{k} {v}" for k, v in sorted(ab.get("slowloris", {}).items())))

    lines += ["", "## Server exits", ""]
    for name, f in flav.items():
        if f["exit"] is not None:
            lines.append(f"- **{name}: CRASHED / exited with {f['exit']} at "
                         f"t={f.get('died_at', 0):.0f} s during the soak**")
        else:
            lines.append(f"- {name}: alive to the end; exit status after SIGTERM "
                         f"{f.get('exit_after_term')} {f.get('exit_note', '')}".rstrip())
    lines += ["", "Chart: [chart.svg](chart.svg) · samples: [samples.csv](samples.csv)", ""]
    with open(os.path.join(out, "summary.md"), "w") as fh:
        fh.write("\n".join(lines))
    write_svg(os.path.join(out, "chart.svg"), samples, list(flav), minutes)
    print("\n".join(lines))
    print()
    for t in verdict_text:
        print("soak: " + t)


def write_svg(path, samples, names, minutes):
    """Two stacked panels (RSS MiB, open fds) over time, one line per flavour."""
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    W, PH, L, R, T, GAP = 820, 230, 70, 20, 40, 60
    H = T + 2 * PH + GAP + 50
    ts = [s["t"] for s in samples] or [0, 1]
    tmin = min(ts)
    tmax = max(max(ts), tmin + 1)
    el = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
          f'font-family="sans-serif" font-size="12">',
          f'<rect width="{W}" height="{H}" fill="white"/>',
          f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="15">lean-grpc soak: '
          f'{minutes:g} min load + abuse (shaded: quiet before/after)</text>']

    def nice(raw):
        """The smallest 1/2/2.5/5 x 10^k step >= raw."""
        exp = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
        for m in (1, 2, 2.5, 5, 10):
            if m * exp >= raw:
                return m * exp
        return 10 * exp

    def x_of(t):
        return L + (t - tmin) / (tmax - tmin) * (W - L - R)

    for pi, (key, label, scale) in enumerate([("rss_kib", "RSS (MiB)", 1 / 1024),
                                               ("fds", "open fds", 1)]):
        top = T + pi * (PH + GAP)
        vals = [s[key] * scale for s in samples] or [1]
        vmax = max(vals) * 1.1 or 1
        step = nice(vmax / 5)
        vmax = step * (int(vmax / step) + 1)

        def y_of(v):
            return top + PH - v / vmax * PH  # noqa: B023

        # Quiet phases.
        load_t = [s["t"] for s in samples if s["phase"] == "load"]
        if load_t:
            el.append(f'<rect x="{L}" y="{top}" width="{x_of(0) - L:.1f}" height="{PH}" fill="#eee"/>')
            xe = x_of(max(load_t))
            el.append(f'<rect x="{xe:.1f}" y="{top}" width="{W - R - xe:.1f}" height="{PH}" fill="#eee"/>')
        v = 0.0
        while v <= vmax + 1e-9:
            y = y_of(v)
            el.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
            el.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
            v += step
        tstep = 60 if tmax - tmin > 240 else 15
        t = 0.0
        while t >= tmin:
            t -= tstep
        t += tstep
        while t <= tmax:
            x = x_of(t)
            el.append(f'<line x1="{x:.1f}" y1="{top + PH}" x2="{x:.1f}" y2="{top + PH + 4}" stroke="#333"/>')
            lab = f"{t / 60:g} min" if tstep == 60 else f"{t:g} s"
            el.append(f'<text x="{x:.1f}" y="{top + PH + 17}" text-anchor="middle">{lab}</text>')
            t += tstep
        el.append(f'<rect x="{L}" y="{top}" width="{W - L - R}" height="{PH}" fill="none" stroke="#333"/>')
        el.append(f'<text x="16" y="{top + PH / 2}" transform="rotate(-90 16 {top + PH / 2})" '
                  f'text-anchor="middle">{label}</text>')
        for ni, name in enumerate(names):
            pts = " ".join(f"{x_of(s['t']):.1f},{y_of(s[key] * scale):.1f}"
                           for s in samples if s["flavour"] == name)
            el.append(f'<polyline points="{pts}" fill="none" stroke="{colors[ni % 4]}" '
                      f'stroke-width="1.8"/>')
    for ni, name in enumerate(names):
        x = L + 10 + ni * 160
        y = H - 12
        el.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 24}" y2="{y - 4}" '
                  f'stroke="{colors[ni % 4]}" stroke-width="3"/>')
        el.append(f'<text x="{x + 30}" y="{y}">{name}</text>')
    el.append("</svg>")
    with open(path, "w") as fh:
        fh.write("\n".join(el) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("grpc-worker", "abuse-worker"):
        role, addr, st, end, seed = sys.argv[1:6]
        fn = grpc_worker if role == "grpc-worker" else abuse_worker
        fn(addr, st, float(end), int(seed))
    else:
        sys.exit(driver(sys.argv[1:]))
