#!/usr/bin/env python3
"""CI's benchmark smoke test and size guard (run as `bench/smoke`).

1. Builds the release binaries (tokio flavour + echo-client; the runtime-free
   flavour too when src/server/readiness.rs exists).
2. For each flavour: starts the server, times start -> first reply, runs
   `echo-client bench --requests 2000` and a 2000-request h2load, and prints
   the figures. It fails only if something does not work (a call without
   grpc-status 0 and its exact reply, a server that does not start or dies),
   never on timing. Errors are counted and shown.
3. Size guard: builds the stripped server of each flavour for x86_64 (and the
   ARM targets with --all-targets) and fails if one is larger than its limit
   in bench/size-budget.toml.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402
import h2raw  # noqa: E402
import procfs  # noqa: E402
import sizes  # noqa: E402


def smoke_flavour(name, binary, client, work, requests):
    """Returns a list of failures (empty = fine) after printing the figures."""
    fails = []
    port = bench.free_port()
    srv = procfs.Server(name, f"{binary} --listen 127.0.0.1:PORT --log warn", port, None, work)
    try:
        t, detail = bench.wait_ready(srv, timeout=30.0, interval=0.002)
        if t is None:
            return [f"{name}: server not ready: {detail} (log: {srv.log_path})"]
        time.sleep(0.5)
        idle_rss = procfs.status_kib(srv.sid, "VmRSS")
        cpu0 = procfs.cpu_seconds(srv.sid)
        cp = subprocess.run([client, "bench", "--addr", f"http://127.0.0.1:{port}", "--requests", str(requests),
                             "--connections", "2", "--streams", "4", "--timeout", "10s", "--json"],
                            capture_output=True, text=True, timeout=120)
        try:
            s = json.loads(cp.stdout)
        except json.JSONDecodeError:
            s = None
        # echo-client bench counts a call as ok only with grpc-status 0 and the exact reply.
        if s is None or cp.returncode != 0 or s.get("ok") != requests or s.get("failed") != 0:
            fails.append(f"{name}: echo-client bench rc={cp.returncode} summary={cp.stdout.strip()} "
                         f"stderr={cp.stderr.strip()[-300:]}")
        body = os.path.join(work, "echo_hello.grpc")
        with open(body, "wb") as fh:
            fh.write(h2raw.grpc_message(bench.MESSAGE))
        h, out = bench.h2load(port, 4, 4, body, n=requests, timeout=120)
        cpu1 = procfs.cpu_seconds(srv.sid)
        why = bench.grpc_failures(h)
        if h.get("succeeded") != requests or why:
            fails.append(f"{name}: h2load {h.get('succeeded')}/{requests} succeeded: {why}\n{out}")
        # A call after the load, through tonic: success means grpc-status 0 and the exact reply.
        cp = subprocess.run([client, "--addr", f"http://127.0.0.1:{port}", "--timeout", "5s", "after-load"],
                            capture_output=True, text=True, timeout=30)
        if cp.returncode != 0 or cp.stdout != "You said: after-load\n":
            fails.append(f"{name}: call after the load failed: rc={cp.returncode} "
                         f"stdout={cp.stdout.strip()!r} stderr={cp.stderr.strip()[-300:]!r}")
        if not srv.alive():
            fails.append(f"{name}: server exited during the smoke test (log: {srv.log_path})")
        peak = procfs.status_kib(srv.sid, "VmHWM")
        lat = s.get("latency_ms") or {} if s else {}
        total = (s.get("requests", 0) if s else 0) + (h.get("succeeded") or 0)
        print(f"{name:<14} start->reply {t * 1000:6.1f} ms | echo-client bench 2x4: "
              f"{(s or {}).get('req_per_s', 0):8.0f} req/s p50 {lat.get('p50', 0):.3f} ms "
              f"p99 {lat.get('p99', 0):.3f} ms | h2load 4x4: {h.get('req_s', 0):8.0f} req/s | "
              f"server CPU {(cpu1 - cpu0) * 1e6 / max(total, 1):5.1f} us/req | "
              f"RSS idle {idle_rss / 1024:.1f} MiB peak {peak / 1024:.1f} MiB")
    finally:
        srv.stop()
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--all-targets", action="store_true", help="also build and check the ARM sizes")
    ap.add_argument("--no-size", action="store_true", help="skip the size budget check")
    ap.add_argument("--no-build", action="store_true", help="reuse target/bench/bin")
    args = ap.parse_args()
    if not shutil.which("h2load"):
        print("bench/smoke: h2load not found (Debian: apt-get install nghttp2-client)", file=sys.stderr)
        return 1
    work = os.path.join(ROOT, "target", "bench", "smoke")
    os.makedirs(work, exist_ok=True)

    class B:  # the subset of bench.py's options that build() reads
        no_build = args.no_build

    flavours = bench.build(B, os.path.join(ROOT, "target", "bench"))
    client = os.path.join(ROOT, "target", "bench", "bin", "echo-client")
    expected = sizes.available_flavours(ROOT)
    fails = [f"{fl}: release build failed" for fl in expected if fl not in dict(flavours)]
    print(f"\n== bench smoke ({args.requests} requests per tool, loopback; timings are informative only)")
    for name, binary in flavours:
        fails += smoke_flavour(name, binary, client, work, args.requests)

    if not args.no_size:
        print("\n== size budget (bench/size-budget.toml)")
        measured = sizes.measure(ROOT, expected, "all" if args.all_targets else "host",
                                 lambda *a: print(*a, file=sys.stderr))
        budget = sizes.load_budget()
        for t, per in measured.items():
            if t.startswith("_"):
                continue
            for fl, size in per.items():
                limit = budget.get(t, {}).get(fl)
                print(f"{t:<32} {fl:<14} {size if size is not None else 'n/a':>10} bytes"
                      f"   budget {limit if limit is not None else 'none'}")
                if size is None and t == sizes.HOST:
                    fails.append(f"size: could not build {t}/{fl}: {measured['_notes'].get(t + '/' + fl)}")
        over = sizes.check(measured, budget)
        if over:
            fails += ["size budget exceeded: " + o for o in over]
            fails.append("If the growth is intended, re-measure (python3 bench/sizes.py measure --targets all "
                         "--write, then check-readme --write) and say why in the commit.")
    if fails:
        print("\nbench/smoke FAILED:")
        for f in fails:
            print("  " + f)
        return 1
    print("\nbench/smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
