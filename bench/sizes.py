"""Stripped release size of `echo-server` per flavour and target, and the size
budget check (`bench/size-budget.toml`).

Each flavour is built the way a board runs it: only its server feature
(`--no-default-features --features tokio-server` / `runtime-free`), release
profile (which already strips), `--target TRIPLE` so the host build in
target/release is left alone. A target is measured only when its Rust
standard library is installed (`rustup target add`) and its linker exists
(.cargo/config.toml names them); otherwise it is reported as n/a with the reason.

    python3 bench/sizes.py measure [--targets host|all] [--flavours tokio,runtime-free]
    python3 bench/sizes.py check   [--targets host|all]      # exit 1 if over budget
    python3 bench/sizes.py suggest [--targets host|all]      # print limits = size + 3 %
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUDGET = os.path.join(HERE, "size-budget.toml")
HOST = "x86_64-unknown-linux-gnu"
TARGETS = [HOST, "aarch64-unknown-linux-gnu", "aarch64-unknown-linux-musl", "armv7-unknown-linux-gnueabihf"]
FEATURES = {"tokio": "tokio-server", "runtime-free": "runtime-free"}
# Linker and strip tool per target when .cargo/config.toml does not say.
TOOLS = {
    HOST: ("cc", "strip"),
    "aarch64-unknown-linux-gnu": ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-strip"),
    "aarch64-unknown-linux-musl": ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-strip"),
    "armv7-unknown-linux-gnueabihf": ("arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-strip"),
}


def available_flavours(root=ROOT):
    out = ["tokio"]
    if os.path.exists(os.path.join(root, "src", "server", "readiness.rs")):
        out.append("runtime-free")
    return out


def installed_targets():
    try:
        r = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True)
        return set(r.stdout.split())
    except OSError:
        return {HOST}


def configured_linker(root, target):
    path = os.path.join(root, ".cargo", "config.toml")
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
        return cfg.get("target", {}).get(target, {}).get("linker")
    except (OSError, tomllib.TOMLDecodeError):
        return None


def build_one(root, target, flavour, log):
    """Builds one stripped echo-server; returns (bytes, None) or (None, reason)."""
    linker = configured_linker(root, target) or TOOLS[target][0]
    if not shutil.which(linker):
        return None, f"linker {linker} not installed"
    env = dict(os.environ)
    var = "CARGO_TARGET_" + re.sub(r"[^A-Z0-9]", "_", target.upper()) + "_LINKER"
    if target != HOST and not configured_linker(root, target):
        env.setdefault(var, linker)
    cmd = ["cargo", "build", "--release", "--locked", "--target", target, "--bin", "echo-server",
           "--no-default-features", "--features", FEATURES[flavour]]
    log("$ " + " ".join(cmd))
    r = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        tail = r.stderr.strip().splitlines()[-3:]
        return None, "build failed: " + " | ".join(tail)
    binary = os.path.join(root, "target", target, "release", "echo-server")
    stripped = os.path.join(root, "target", target, "release", f"echo-server-{flavour}.stripped")
    shutil.copy2(binary, stripped)
    strip = TOOLS[target][1]
    if shutil.which(strip):  # the release profile strips already; this makes sure
        subprocess.run([strip, stripped], capture_output=True)
    return os.path.getsize(stripped), None


def measure(root=ROOT, flavours=None, targets="all", log=print):
    """{target: {flavour: bytes | None}, '_notes': {target/flavour: reason}}."""
    names = [f for f, _ in flavours] if flavours and isinstance(flavours[0], tuple) else (flavours or available_flavours(root))
    wanted = TARGETS if targets == "all" else [HOST]
    have = installed_targets()
    out, notes = {}, {}
    for t in wanted:
        out[t] = {}
        for fl in names:
            if t not in have:
                out[t][fl], why = None, f"rust target {t} not installed (rustup target add {t})"
            else:
                out[t][fl], why = build_one(root, t, fl, log)
            if why:
                notes[f"{t}/{fl}"] = why
            log(f"size {t} {fl}: {out[t][fl]} {why or ''}")
    out["_notes"] = notes
    return out


def load_budget(path=BUDGET):
    """{target: {flavour: max_bytes}}; empty if the file does not exist yet."""
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as f:
        return tomllib.load(f)


def check(sizes, budget):
    """Returns a list of messages for binaries over budget (empty = fine)."""
    bad = []
    for target, per in sizes.items():
        if target.startswith("_"):
            continue
        for flavour, size in per.items():
            limit = budget.get(target, {}).get(flavour)
            if size is None or limit is None:
                continue
            if size > limit:
                bad.append(f"{target} {flavour}: {size} bytes > budget {limit} bytes "
                           f"(+{size - limit} bytes, +{100.0 * (size - limit) / limit:.1f}%)")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["measure", "check", "suggest"])
    ap.add_argument("--targets", choices=["host", "all"], default="host")
    args = ap.parse_args()
    sizes = measure(ROOT, None, args.targets, lambda *a: print(*a, file=sys.stderr))
    budget = load_budget()
    print(f"{'target':<32} {'flavour':<14} {'bytes':>10} {'budget':>10}")
    for t, per in sizes.items():
        if t.startswith("_"):
            continue
        for fl, size in per.items():
            limit = budget.get(t, {}).get(fl)
            print(f"{t:<32} {fl:<14} {size if size is not None else 'n/a':>10} "
                  f"{limit if limit is not None else '-':>10}")
    for k, why in sizes["_notes"].items():
        print(f"  n/a {k}: {why}")
    if args.action == "suggest":
        print("\n# size-budget.toml lines: measured size + 3 %, rounded up to 1 KiB")
        for t, per in sizes.items():
            if t.startswith("_"):
                continue
            print(f'["{t}"]')
            for fl, size in per.items():
                if size is not None:
                    print(f'{fl} = {-(-int(size * 1.03) // 1024) * 1024}  # measured {size}')
    if args.action == "check":
        bad = check(sizes, budget)
        if bad:
            print("\nSIZE BUDGET EXCEEDED:")
            for b in bad:
                print("  " + b)
            print("\nIf the growth is intended, raise the limit in bench/size-budget.toml to the new "
                  "size + ~3% and say why in the commit message; if you made the binary smaller, "
                  "lower it. Measure with: python3 bench/sizes.py measure --targets all")
            return 1
        missing = [f"{t}/{fl}" for t, per in sizes.items() if not t.startswith("_")
                   for fl, s in per.items() if s is not None and budget.get(t, {}).get(fl) is None]
        if missing:
            print("note: no budget recorded for " + ", ".join(missing) + " (add it to bench/size-budget.toml)")
        print("size budget: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
