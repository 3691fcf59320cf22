#!/usr/bin/env python3
"""lean-grpc benchmark: builds both server flavours and measures them side by
side on this machine, with the reference peers when ../shared/peers exists.

Run it as `bench/run` (see `bench/run --help` and bench/README.md).

Throughput and latency (h2load, scenarios s1 = 1x1, s2 = 10x10, s3 = 100x1),
server CPU-us per request, idle and peak RSS come from one interleaved run of
>= 3 rounds: with the peers folder, the peers' own benchmark engine (bench.sh,
copied to a writable place) runs our servers next to the peers; without it the
engine in this file does the same for our flavours alone. The rest is measured
here for every gRPC server: RSS per idle connection at 1,000 connections,
start-up time to the first successful reply, idle wake-ups (context switches
per second, 0 and 10 idle connections), and the stripped binary size of our
flavours per target. The server runs on core 0, the load generator and this
script on core 1 (taskset).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import h2raw  # noqa: E402
import procfs  # noqa: E402
import report  # noqa: E402
import sizes  # noqa: E402

SERVER_CORE, LOAD_CORE = 0, 1
SCENARIOS = {
    "s1": dict(c=1, m=1, desc="1 connection x 1 stream"),
    "s2": dict(c=10, m=10, desc="10 connections x 10 streams"),
    "s3": dict(c=100, m=1, desc="100 connections x 1 stream"),
}
PEER_NAMES = ["python-grpcio", "cpp-grpc", "node-grpc-js", "rust-tonic-default", "rust-pajamax"]
MESSAGE = "hello"
NICE = 0  # --nice: niceness of the servers and h2load (negative = priority over other work)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60,
                              **kw).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return repr(e)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ------------------------------------------------------------------ build
def build(args, work):
    """Builds the flavours (release) and copies each echo-server to work/bin."""
    flavours = [("tokio", [])]
    if os.path.exists(os.path.join(ROOT, "src", "server", "readiness.rs")):
        flavours.append(("runtime-free", ["--no-default-features", "--features", "runtime-free"]))
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir, exist_ok=True)
    out = []
    for name, feats in flavours:
        if not args.no_build:
            cmd = ["cargo", "build", "--release", "--bin", "echo-server"] + feats
            if name == "tokio":
                cmd = ["cargo", "build", "--release", "--bins"]
            log("$ " + " ".join(cmd))
            r = subprocess.run(cmd, cwd=ROOT)
            if r.returncode != 0:
                log(f"build of the {name} flavour failed; skipping it")
                continue
            shutil.copy2(os.path.join(ROOT, "target", "release", "echo-server"),
                         os.path.join(bindir, f"echo-server-{name}"))
            if name == "tokio":
                shutil.copy2(os.path.join(ROOT, "target", "release", "echo-client"),
                             os.path.join(bindir, "echo-client"))
        path = os.path.join(bindir, f"echo-server-{name}")
        if os.path.exists(path):
            out.append((name, path))
    return out


# ------------------------------------------------------------------ peers
def find_peers(args, work):
    """A ready-to-run copy of ../shared/peers (or $BENCH_PEERS_SRC), set up on first
    use, or None. $BENCH_PEERS_DIR names an already set-up copy to use as is."""
    if args.no_peers:
        return None
    if os.environ.get("BENCH_PEERS_DIR"):
        return os.environ["BENCH_PEERS_DIR"]
    src = os.environ.get("BENCH_PEERS_SRC") or os.path.normpath(os.path.join(ROOT, "..", "shared", "peers"))
    if not os.path.isdir(src):
        log(f"no peers folder at {src}: benchmarking our flavours only")
        return None
    dst = os.path.join(ROOT, "target", "bench", "peers")
    if not os.path.isdir(dst):
        log(f"copying {src} -> {dst}")
        shutil.copytree(src, dst, symlinks=True)
        subprocess.run(["chmod", "-R", "u+w", dst])
    marker = os.path.join(dst, ".setup-done")
    if not os.path.exists(marker):
        log("setting up the peers (apt, pip, npm, g++, cargo; several minutes)...")
        r = subprocess.run([os.path.join(dst, "setup.sh")], cwd=dst)
        if r.returncode != 0:
            log("peer setup failed: benchmarking our flavours only")
            return None
        open(marker, "w").close()
    return dst


def peer_servers(peers):
    out = []
    for p in PEER_NAMES:
        run = os.path.join(peers, "peers", p, "run.sh")
        if os.path.exists(run):
            out.append(dict(name=p, cmd=f"{run} PORT", conn_cmd=f"{run} PORT", kind="peer"))
    return out


# ------------------------------------------------------------------ h2load
def grpc_body_file(work):
    path = os.path.join(work, "echo_hello.grpc")
    with open(path, "wb") as f:
        f.write(h2raw.grpc_message(MESSAGE))
    return path


def h2load(port, c, m, body, n=None, duration=None, log_file=None, timeout=120):
    cmd = (["nice", "-n", str(NICE)] if NICE else []) + ["taskset", "-c", str(LOAD_CORE), "h2load", "-t", "1", "-c", str(c), "-m", str(m),
           "-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers"]
    cmd += ["-n", str(n)] if n else ["-D", str(max(1, int(round(duration))))]  # whole seconds only
    if log_file:
        cmd += ["--log-file", log_file]
    cmd.append(f"http://127.0.0.1:{port}/echo.Echo/Reply")
    t0 = time.monotonic()
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out, rc = cp.stdout, cp.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
    r = {"rc": rc, "wall_s": time.monotonic() - t0, "cmd": " ".join(shlex.quote(x) for x in cmd)}
    m_ = re.search(r"finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s", out)
    if m_:
        r["elapsed_s"] = float(m_.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[m_.group(2)]
        r["req_s"] = float(m_.group(3))
    m_ = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                   r"(\d+) errored, (\d+) timeout", out)
    if m_:
        r.update(zip(["total", "started", "done", "succeeded", "failed", "errored", "timeout"],
                     map(int, m_.groups())))
    m_ = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m_:
        r["s2xx"] = int(m_.group(1))
    m_ = re.search(r"traffic: .*\((\d+)\) data", out)
    if m_:
        r["data_bytes"] = int(m_.group(1))
    return r, out


def grpc_failures(res, message=MESSAGE):
    """Why an h2load run of Echo calls with `message` was not all gRPC successes
    ("" if every request got exactly its reply).

    h2load counts HTTP statuses, but a gRPC error is HTTP 200 too (grpc-status
    in a trailers-only response, which carries no DATA). h2load cannot read
    trailers; it does count the DATA bytes it received, so every call got its
    reply exactly when those are `succeeded` times the framed
    `EchoReply { "You said: <message>" }`.
    """
    succ = res.get("succeeded") or 0
    why = []
    if res.get("rc") != 0:
        why.append(f"h2load rc={res.get('rc')}")
    if not succ:
        why.append("no request succeeded")
    if res.get("s2xx") != res.get("done") or res.get("failed") or res.get("errored"):
        why.append(f"2xx={res.get('s2xx')} of done={res.get('done')}, failed={res.get('failed')}, "
                   f"errored={res.get('errored')}")
    reply = len(h2raw.grpc_message("You said: " + message))
    data = res.get("data_bytes")
    if data != succ * reply:
        why.append(f"{data} reply bytes for {succ} calls, expected {succ * reply} "
                   f"({reply} per reply): {succ - (data or 0) // reply} call(s) without their reply "
                   "(a gRPC error status, or a wrong reply)")
    return "; ".join(why)


def percentiles(log_file):
    lat = []
    with open(log_file) as f:
        for line in f:
            p = line.split("\t")
            if len(p) >= 3 and p[1] == "200":
                lat.append(int(p[2]))
    if not lat:
        return {}
    lat.sort()

    def q(x):
        return lat[min(len(lat) - 1, int(round(x * (len(lat) - 1))))] / 1000.0

    return {"p50_ms": q(0.50), "p90_ms": q(0.90), "p99_ms": q(0.99), "max_ms": lat[-1] / 1000.0}


def wait_ready(srv, timeout=60.0, interval=0.002):
    """Polls with a real Echo call until it succeeds; returns seconds since spawn or None."""
    end = time.monotonic() + timeout
    detail = ""
    while time.monotonic() < end:
        if not srv.alive():
            return None, f"exited rc={srv.p.returncode}"
        ok, detail = h2raw.probe_echo("127.0.0.1", srv.port, MESSAGE, timeout=2.0)
        if ok:
            return time.monotonic() - srv.started, "ok"
        time.sleep(interval)
    return None, detail


# ------------------------------------------------------------------ own engine
def own_measure(s, sk, args, work, body):
    sc = SCENARIOS[sk]
    rec = {"server": s["name"], "scenario": sk, "errors": []}
    srv = procfs.Server(s["name"], s["cmd"], free_port(), SERVER_CORE, work, NICE)
    try:
        ready, detail = wait_ready(srv)
        if ready is None:
            rec["errors"].append("not ready: " + detail)
            return rec
        time.sleep(1.0)
        rec["idle_rss_kib"] = procfs.status_kib(srv.sid, "VmRSS")
        waited, pct, _ = procfs.wait_quiet({srv.sid}, timeout=args.quiet_timeout)
        rec["quiet_wait_s"] = round(waited, 1)
        h2load(srv.port, sc["c"], sc["m"], body, n=max(2000, sc["c"] * sc["m"] * 20))  # warm-up
        lat_log = os.path.join(work, f"lat.{s['name']}.{sk}.{srv.port}.tsv")
        snap0, cpu0 = procfs.snapshot(), procfs.cpu_seconds(srv.sid)
        res, out = h2load(srv.port, sc["c"], sc["m"], body, duration=args.duration, log_file=lat_log,
                          timeout=args.duration * 5 + 60)
        cpu1, snap1 = procfs.cpu_seconds(srv.sid), procfs.snapshot()
        with open(os.path.join(work, f"h2load.{s['name']}.{sk}.{srv.port}.txt"), "w") as f:
            f.write(res["cmd"] + "\n" + out)
        rec["foreign_user_cpu_pct"] = procfs.foreign_cpu_pct(snap0, snap1, {srv.sid}, res["wall_s"])
        rec["contaminated"] = rec["foreign_user_cpu_pct"] > args.contam_pct
        rec["peak_rss_kib_vmhwm"] = procfs.status_kib(srv.sid, "VmHWM")
        rec.update({k: res.get(k) for k in ("req_s", "succeeded", "failed", "errored", "s2xx", "elapsed_s")})
        succ = res.get("succeeded") or 0
        if succ:
            rec["cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / succ
        if os.path.exists(lat_log):
            rec.update(percentiles(lat_log))
            os.remove(lat_log)
        why = grpc_failures(res)
        if why:
            rec["errors"].append(f"h2load succeeded={succ}: {why}")
        ok, detail = h2raw.probe_echo("127.0.0.1", srv.port, "after-load", timeout=5.0)
        if not ok:
            rec["errors"].append("post-load call failed: " + detail)
        return rec
    finally:
        srv.stop()


def own_engine(servers, args, work, body):
    runs = []
    t0 = time.monotonic()
    for rnd in range(1, args.rounds + 1):
        for sk in args.scenarios:
            for s in servers:
                for attempt in range(args.retries + 1):
                    rec = own_measure(s, sk, args, work, body)
                    rec["round"], rec["attempt"] = rnd, attempt
                    runs.append(rec)
                    if rec["errors"] or not rec.get("contaminated"):
                        break
                    log(f"   contaminated ({rec['foreign_user_cpu_pct']:.0f}% of a core used by others), retrying")
                attempts = [r for r in runs if r["server"] == s["name"] and r["scenario"] == sk and r["round"] == rnd]
                best = min(attempts, key=lambda r: (bool(r["errors"]), r.get("foreign_user_cpu_pct") or 0))
                for r in attempts:
                    r["accepted"] = r is best
                log(f"[{time.monotonic() - t0:5.0f}s] round {rnd} {sk} {s['name']:<20} req/s={best.get('req_s')} "
                    f"p50={best.get('p50_ms')}ms cpu/req={best.get('cpu_us_per_req')} "
                    f"foreign={best.get('foreign_user_cpu_pct', 0):.0f}% errors={best['errors']}")
    return runs


def summarize(runs, names, scen_keys):
    """Medians over the accepted attempts, same keys as the peers' engine."""
    rows = []
    for sk in scen_keys:
        for name in names:
            rs = [r for r in runs if r["server"] == name and r["scenario"] == sk and r.get("accepted", True)]
            good = [r for r in rs if not r["errors"]]
            reqs = [r["req_s"] for r in good if r.get("req_s")]
            row = {"scenario": sk, "server": name, "rounds": len(rs), "ok_rounds": len(good),
                   "req_s_all": reqs, "req_s_median": med(reqs),
                   "req_s_min": min(reqs) if reqs else None, "req_s_max": max(reqs) if reqs else None,
                   "p50_ms_median": med([r.get("p50_ms") for r in good]),
                   "p90_ms_median": med([r.get("p90_ms") for r in good]),
                   "p99_ms_median": med([r.get("p99_ms") for r in good]),
                   "cpu_us_per_req_median": med([r.get("cpu_us_per_req") for r in good]),
                   "cpu_us_per_req_all": [r.get("cpu_us_per_req") for r in good],
                   "idle_rss_mib_median": (med([r.get("idle_rss_kib") for r in rs]) or 0) / 1024,
                   "peak_rss_mib_median": (med([r.get("peak_rss_kib_vmhwm") for r in good]) or 0) / 1024,
                   "contaminated_rounds": sum(1 for r in rs if r.get("contaminated")),
                   "foreign_cpu_pct_max": max([r.get("foreign_user_cpu_pct") or 0 for r in rs] or [0]),
                   "errors": [e for r in rs for e in r["errors"]]}
            if reqs and row["req_s_median"]:
                row["req_s_spread_pct"] = 100.0 * (max(reqs) - min(reqs)) / row["req_s_median"]
            rows.append(row)
    return rows


def peers_engine(peers, ours, args, work):
    """Runs the peers' bench.sh with our servers first, then the peers and nghttpd."""
    out = os.path.join(work, "peers-results.json")
    cmd = [os.path.join(peers, "bench.sh"), "--rounds", str(args.rounds), "--duration", str(args.duration),
           "--scenarios", ",".join(args.scenarios), "--out", out, "--quiet-timeout", str(args.quiet_timeout),
           "--quiet-secs", "3", "--retries", str(args.retries), "--contam-pct", str(args.contam_pct),
           "--nice", str(args.nice)]
    if not args.only_ours:
        cmd += ["--peers", "--ceiling"]
    cmd += [f"{s['name']}={s['cmd']}" for s in ours]
    log("$ " + " ".join(shlex.quote(c) for c in cmd))
    rc = subprocess.run(cmd).returncode
    if not os.path.exists(out):
        log(f"peers engine failed (rc={rc}) without results")
        return None, None, None
    with open(out) as f:
        d = json.load(f)
    runs = d["runs"]
    names = [s["name"] for s in d["meta"]["servers"]]
    return runs, names, d["meta"]


# ------------------------------------------------------------------ extras
def startup_and_conns(servers, args, work):
    """Start-up time (median of --rounds) and RSS per idle connection at --conns."""
    res = {}
    for s in servers:
        r = res.setdefault(s["name"], {"startup_ms_all": []})
        for _ in range(args.rounds):
            # Start-up is short and easily delayed by other work on core 0: wait for quiet.
            _, pct, quiet = procfs.wait_quiet(set(), secs=2, timeout=min(args.quiet_timeout, 30.0))
            if not quiet:
                r["startup_contaminated"] = r.get("startup_contaminated", 0) + 1
            srv = procfs.Server(s["name"], s["cmd"], free_port(), SERVER_CORE, work, NICE)
            try:
                t, detail = wait_ready(srv, interval=0.001)
                if t is None:
                    r.setdefault("errors", []).append("not ready: " + detail)
                else:
                    r["startup_ms_all"].append(t * 1000)
            finally:
                srv.stop()
        r["startup_ms_median"] = med(r["startup_ms_all"])
        log(f"start-up {s['name']:<20} {r['startup_ms_all']}")
        if not args.conns:
            continue
        srv = procfs.Server(s["name"], s["conn_cmd"], free_port(), SERVER_CORE, work, NICE)
        conns = h2raw.IdleConns()
        try:
            t, detail = wait_ready(srv)
            if t is None:
                r.setdefault("errors", []).append("not ready: " + detail)
                continue
            time.sleep(1.0)
            rss0 = procfs.status_kib(srv.sid, "VmRSS")
            n = conns.open("127.0.0.1", srv.port, args.conns)
            conns.pump(2.0)
            n = conns.established()
            rss1 = procfs.status_kib(srv.sid, "VmRSS")
            ok, _ = h2raw.probe_echo("127.0.0.1", srv.port, MESSAGE)
            r.update({"conns_asked": args.conns, "conns_established": n, "conns_closed": conns.closed(),
                      "conns_settings_acked": conns.acked(), "conns_connect_failed": conns.failed_connect,
                      "rss_before_conns_kib": rss0, "rss_with_conns_kib": rss1,
                      "threads_with_conns": procfs.thread_count(srv.sid),
                      "call_ok_with_conns": ok,
                      "rss_per_conn_kib": (rss1 - rss0) / n if n else None})
            log(f"conns    {s['name']:<20} {n}/{args.conns} established, RSS {rss0} -> {rss1} KiB")
        finally:
            conns.close()
            srv.stop()
    return res


def wakeups(servers, args, work):
    """Context switches per second of idle servers, all started at once (they
    are idle, so they do not disturb each other), with 0 then 10 idle connections."""
    res = {s["name"]: {} for s in servers}
    running = []
    try:
        for s in servers:
            running.append((s, procfs.Server(s["name"], s["cmd"], free_port(), SERVER_CORE, work, NICE)))
        for s, srv in running:
            t, detail = wait_ready(srv)
            if t is None:
                res[s["name"]]["errors"] = ["not ready: " + detail]
        live = [(s, srv) for s, srv in running if srv.alive() and "errors" not in res[s["name"]]]
        conns = h2raw.IdleConns()
        for label, nconn in (("idle0", 0), ("idle10", 10)):
            for s, srv in live:
                if nconn:
                    conns.open("127.0.0.1", srv.port, nconn)
            conns.pump(3.0)  # settle: start-up / probe / handshake work is done
            before = {s["name"]: procfs.context_switches(srv.sid) for s, srv in live}
            t0 = time.monotonic()
            conns.pump(args.wakeup_secs)
            dt = time.monotonic() - t0
            for s, srv in live:
                after = procfs.context_switches(srv.sid)
                b = before[s["name"]]
                per_thread = {k: v - b["threads"].get(k, 0) for k, v in after["threads"].items()
                              if v - b["threads"].get(k, 0) > 0}
                res[s["name"]][f"{label}_ctxsw_per_s"] = (after["total"] - b["total"]) / dt
                res[s["name"]][f"{label}_busy_threads"] = per_thread
                res[s["name"]][f"{label}_threads"] = len(after["threads"])
            log(f"wake-ups with {nconn} idle connections over {dt:.0f}s: " + ", ".join(
                f"{s['name']}={res[s['name']][label + '_ctxsw_per_s']:.2f}/s" for s, _ in live))
        res["_conns_still_open"] = conns.established()
        conns.close()
    finally:
        for _, srv in running:
            srv.stop()
    return res


# ------------------------------------------------------------------ main
def machine():
    return {
        "hostname": platform.node(),
        "cpu": sh("lscpu | sed -n 's/^Model name: *//p'"),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "mem_total": sh("sed -n 's/^MemTotal: *//p' /proc/meminfo"),
        "virtualization": sh("systemd-detect-virt 2>/dev/null || true") or None,
        "rustc": sh("rustc --version"),
        "h2load": sh("h2load --version"),
        "python": platform.python_version(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="short version: 1 round, 2 s runs, 5 s wake-up windows, 200 idle connections, "
                         "at most 15 s waiting for quiet, host size only, no peers unless --peers")
    ap.add_argument("--peers", action="store_true", help="with --quick: still include the peers")
    ap.add_argument("--no-peers", action="store_true", help="benchmark our flavours only")
    ap.add_argument("--only-ours", action="store_true",
                    help="use the peers' engine but do not add the peers themselves")
    ap.add_argument("--engine", choices=["auto", "own"], default="auto",
                    help="auto: the peers' bench.sh when the peers exist, else our own h2load loop")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per measured h2load run")
    ap.add_argument("--scenarios", default="s1,s2,s3")
    ap.add_argument("--conns", type=int, default=1000, help="idle connections for RSS per connection (0 = skip)")
    ap.add_argument("--wakeup-secs", type=float, default=30.0)
    ap.add_argument("--sizes", choices=["all", "host", "none"], default="all",
                    help="stripped binary sizes: all targets, x86_64 only, or none")
    ap.add_argument("--quiet-timeout", type=float, default=120.0,
                    help="max seconds to wait for other processes to go quiet before each run")
    ap.add_argument("--contam-pct", type=float, default=10.0)
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--nice", type=int, default=0,
                    help="run the servers and h2load at this niceness, e.g. -10 (root) to favour them over "
                         "other work on a shared machine; default 0")
    ap.add_argument("--no-build", action="store_true", help="reuse target/bench/bin from the last run")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="results folder")
    args = ap.parse_args()
    global NICE
    NICE = args.nice
    if args.quick:
        args.rounds, args.duration, args.wakeup_secs = 1, 2.0, 5.0
        args.quiet_timeout = min(args.quiet_timeout, 15.0)
        args.conns = min(args.conns, 200)
        if args.sizes == "all":
            args.sizes = "host"
        if not args.peers:
            args.no_peers = True
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    for sk in args.scenarios:
        if sk not in SCENARIOS:
            ap.error(f"unknown scenario {sk}")
    for tool in ("taskset", "h2load"):
        if not shutil.which(tool):
            ap.error(f"{tool} not found (Debian: apt-get install util-linux nghttp2-client)")

    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%d-%H%M") + ("-quick" if args.quick else "")
    work = os.path.join(ROOT, "target", "bench", stamp)
    os.makedirs(work, exist_ok=True)
    os.sched_setaffinity(0, {LOAD_CORE})
    log(f"server on core {SERVER_CORE}, load generator and this script on core {LOAD_CORE} (taskset)")

    flavours = build(args, os.path.join(ROOT, "target", "bench"))
    if not flavours:
        log("no server flavour built")
        return 1
    ours = [dict(name=f"lean-{n}", cmd=f"{p} --listen 127.0.0.1:PORT --log warn",
                 conn_cmd=f"{p} --listen 127.0.0.1:PORT --log warn --max-connections {max(args.conns, 256) + 64}",
                 kind="ours", binary=p) for n, p in flavours]
    peers = find_peers(args, work)
    others = peer_servers(peers) if peers and not args.only_ours else []
    body = grpc_body_file(work)

    meta = {"date_utc": now.isoformat(timespec="seconds"), "machine": machine(),
            "pinning": f"server on core {SERVER_CORE}, h2load and measuring script on core {LOAD_CORE} (taskset)",
            "args": {k: v for k, v in vars(args).items()}, "scenarios": {k: SCENARIOS[k] for k in args.scenarios},
            "servers": [{k: s[k] for k in ("name", "cmd", "kind")} for s in ours + others],
            "git": sh(f"git -C {shlex.quote(ROOT)} describe --always --dirty"),
            "peers_dir": peers}

    engine = "own"
    names = [s["name"] for s in ours]
    if peers and args.engine == "auto":
        got = peers_engine(peers, ours, args, work)
        if got[0] is not None:
            runs, names, pmeta = got
            engine = "peers bench.sh"
            meta["peers_versions"] = pmeta.get("versions")
    if engine == "own":
        runs = own_engine(ours, args, work, body)
    meta["engine"] = engine
    throughput = summarize(runs, names, args.scenarios)

    extras_servers = ours + others
    extras = startup_and_conns(extras_servers, args, work)
    wk = wakeups(extras_servers, args, work)
    for name, v in wk.items():
        if name in extras:
            extras[name].update(v)
    size = sizes.measure(ROOT, [(n, p) for n, p in flavours], args.sizes, log) if args.sizes != "none" else {}

    result = {"meta": meta, "throughput": throughput, "extras": extras, "sizes": size, "runs": runs}
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, stamp)
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, "results.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    md = report.markdown(result)
    with open(os.path.join(base, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(base, "chart.svg"), "w") as f:
        f.write(report.svg(result))
    print(md)
    print(f"\nresults: {base}/results.json, results.md, chart.svg; logs: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
