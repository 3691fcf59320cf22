"""Stripped release size of `echo-server` per flavour and target, the size
budget (`bench/size-budget.toml`), and the check that the README's size tables
show the sizes recorded there.

Each flavour is built the way a board runs it: only its server feature
(`--no-default-features --features tokio-server` / `runtime-free`), release
profile (which already strips), `--target TRIPLE` so the host build in
target/release is left alone, with the toolchain pinned in rust-toolchain.toml.
A target is measured only when its Rust standard library is installed
(`rustup target add`) and its linker exists (.cargo/config.toml names them);
otherwise it is reported as n/a with the reason (and `check` fails).

    python3 bench/sizes.py measure [--targets host|arm|all] [--tls] [--write]
        print the sizes (--tls: also the +tls builds); --write records them (and
        limits = size + headroom) in bench/size-budget.toml, with the commit, date
        and rustc. Needs --targets all.
    python3 bench/sizes.py check [--targets host|arm|all]
        build, and exit 1 if a binary is over its limit or cannot be built
    python3 bench/sizes.py check-readme [--write]
        compare the README's size tables with the measured sizes in
        bench/size-budget.toml (no build); --write rewrites the tables' figures
"""
import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUDGET = os.path.join(HERE, "size-budget.toml")
README = os.path.join(ROOT, "README.md")
HOST = "x86_64-unknown-linux-gnu"
ARM = ["aarch64-unknown-linux-gnu", "aarch64-unknown-linux-musl", "armv7-unknown-linux-gnueabihf"]
TARGETS = [HOST] + ARM
FEATURES = {"tokio": "tokio-server", "runtime-free": "runtime-free",
            "tokio+tls": "tokio-server,tls", "runtime-free+tls": "runtime-free,tls"}
# The flavours with a budget (what a board runs by default); the +tls ones are
# measured for the README's TLS table only.
BUDGETED = ["tokio", "runtime-free"]
# Limit = measured size + HEADROOM_PERCENT, at least HEADROOM_MIN_BYTES (aarch64 sizes move
# in 16 KiB steps: .cargo/config.toml links with max-page-size=16384), rounded up to 1 KiB.
HEADROOM_PERCENT = 2
HEADROOM_MIN_BYTES = 16384
# What a build's size depends on (for the "-dirty" mark of a measurement).
BUILD_INPUTS = ["src", "proto", "build.rs", "Cargo.toml", "Cargo.lock", ".cargo", "rust-toolchain.toml"]
# Project targets that cap a limit whatever the headroom. The goal is runtime-free on
# aarch64 <= 400 KiB (issue 9; fallback 420 KiB), but the service API and streaming
# (+16 KiB) and the memory budget (one more 16 KiB step, ~7.5 KB of code) put it at
# 430,688 B (2026-12-02): no cap until it is trimmed back, so CI holds today's size
# instead of failing on a goal the code does not meet (docs/runtime-free-design.md).
CAPS: dict = {}
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
        r = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True,
                           cwd=ROOT)
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
    out = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target"), target, "release")
    binary = os.path.join(out, "echo-server")
    stripped = os.path.join(out, f"echo-server-{flavour}.stripped")
    shutil.copy2(binary, stripped)
    strip = TOOLS[target][1]
    if shutil.which(strip):  # the release profile strips already; this makes sure
        subprocess.run([strip, stripped], capture_output=True)
    return os.path.getsize(stripped), None


def target_list(targets):
    return {"all": TARGETS, "host": [HOST], "arm": ARM}[targets]


def measure(root=ROOT, flavours=None, targets="all", log=print):
    """{target: {flavour: bytes | None}, '_notes': {target/flavour: reason}}."""
    names = [f for f, _ in flavours] if flavours and isinstance(flavours[0], tuple) else (flavours or available_flavours(root))
    have = installed_targets()
    out, notes = {}, {}
    for t in target_list(targets):
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


def load(path=BUDGET):
    """The whole size-budget.toml ({} if it does not exist)."""
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as f:
        return tomllib.load(f)


def load_budget(path=BUDGET):
    """{target: {flavour: max_bytes}}."""
    return load(path).get("limit", {})


def limit_for(target, flavour, size):
    """The budget for a binary measured at `size` bytes: size + headroom, capped."""
    grown = max(size * (100 + HEADROOM_PERCENT) // 100, size + HEADROOM_MIN_BYTES)
    limit = -(-grown // 1024) * 1024
    return min(limit, CAPS.get((target, flavour), limit))


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


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return "?"


def source_commit():
    """The commit of the sources that decide the size; "-dirty" if they have local changes."""
    # The commit of the sources that decide the size; "-dirty" if they have local changes.
    commit = sh(["git", "rev-parse", "--short=12", "HEAD"])
    if sh(["git", "status", "--porcelain", "--", *BUILD_INPUTS]):
        commit += "-dirty"
    return commit


def render_budget(sizes, commit):
    """The text of size-budget.toml for these measured sizes (taken at `commit`)."""
    rustc = sh(["rustc", "--version"])
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    lines = [
        "# Size of the stripped release `echo-server`, in bytes, per target and flavour, built as",
        "#   cargo build --release --locked --target TARGET --bin echo-server \\",
        "#     --no-default-features --features tokio-server|runtime-free[,tls]",
        "# with the toolchain of rust-toolchain.toml. Written by `python3 bench/sizes.py measure",
        "# --targets all --write`; do not edit by hand. CI (scripts/test) fails when a binary is",
        "# larger than its [limit] (bench/smoke: x86_64; the ARM size step: the others), and when",
        "# the README's size tables differ from [measured] (`bench/sizes.py check-readme`).",
        f"# Limit = measured + {HEADROOM_PERCENT} % (at least {HEADROOM_MIN_BYTES // 1024} KiB: aarch64 sizes "
        "move in 16 KiB steps),",
        "# rounded up to 1 KiB. Goal (not met, see bench/sizes.py CAPS): runtime-free aarch64-gnu <= 400 KiB.",
        "# A change that grows a binary on purpose re-measures and says why in the commit.",
        "",
        "[measured]",
        f'commit = "{commit}"',
        f'date = "{date}"',
        f'rustc = "{rustc}"',
        "",
    ]
    for t in TARGETS:
        lines.append(f'[measured."{t}"]')
        for fl in FEATURES:
            if sizes.get(t, {}).get(fl) is not None:
                lines.append(f'"{fl}" = {sizes[t][fl]}')
        lines.append("")
    for t in TARGETS:
        lines.append(f'[limit."{t}"]')
        for fl in BUDGETED:
            if sizes.get(t, {}).get(fl) is not None:
                lines.append(f'"{fl}" = {limit_for(t, fl, sizes[t][fl])}')
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


# ------------------------------------------------------------------ README tables

def num(text):
    """The integer in a table cell such as '**397,920 B**' or '880224'."""
    digits = re.sub(r"[^0-9]", "", text)
    return int(digits) if digits else None


def kb(n):
    return f"{n / 1024:.1f}"


def readme_cells(text):
    """Yields (line index, cells, kind) for the rows of the README's three size tables."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("| "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        target = cells[0].split(" ")[0]
        if target not in TARGETS:
            continue
        if len(cells) == 3 and "→" in cells[1]:
            yield i, cells, "tls"          # | target | tokio → +tls | runtime-free → +tls |
        elif len(cells) == 4 and cells[1].endswith("B"):
            yield i, cells, "overview"     # | target | tokio B | runtime-free B | reference |
        elif len(cells) == 6 and cells[1] in BUDGETED:
            yield i, cells, "size"         # | target | flavour | bytes | KB | budget | vs |


def fmt_b(n, old):
    """n in the style of the old cell: '1,234 B', '**1,234 B**', '1,234' or '1234'."""
    core = f"{n:,}" if "," in old or len(re.sub(r"[^0-9]", "", old)) < 4 else str(n)
    if old.rstrip("*").endswith(" B"):
        core += " B"
    return f"**{core}**" if old.startswith("**") else core


def readme_check(text, measured, write=False):
    """Returns (problems, new_text): each README size figure against `measured`."""
    problems = []
    lines = text.split("\n")
    seen = set()
    for i, cells, kind in readme_cells(text):
        t = cells[0].split(" ")[0]
        want = measured.get(t, {})
        pairs = []  # (cell index, flavour, part index within an arrow cell or None)
        if kind == "overview":
            pairs = [(1, "tokio", None), (2, "runtime-free", None)]
        elif kind == "size":
            pairs = [(2, cells[1], None)]
        elif kind == "tls":
            pairs = [(1, "tokio", 0), (1, "tokio+tls", 1), (2, "runtime-free", 0), (2, "runtime-free+tls", 1)]
        new = list(cells)
        for col, fl, part in pairs:
            seen.add((kind, t, fl))
            cell = new[col]
            parts = [p.strip() for p in cell.split("→")] if part is not None else [cell]
            have = num(parts[part or 0])
            exp = want.get(fl)
            if exp is None and fl.endswith("+tls"):
                continue  # TLS sizes are checked once measured (measure --tls --write)
            if exp is None:
                problems.append(f"README line {i + 1}: {t} {fl}: no measured size in bench/size-budget.toml")
                continue
            if have != exp:
                problems.append(f"README line {i + 1} ({kind} table): {t} {fl} shows {have}, "
                                f"bench/size-budget.toml measured {exp}")
                parts[part or 0] = fmt_b(exp, parts[part or 0])
                new[col] = " → ".join(parts) if part is not None else parts[0]
            if kind == "size" and num(new[3]) is not None and new[3] != kb(exp):
                problems.append(f"README line {i + 1}: {t} {fl} KB column shows {new[3]}, expected {kb(exp)}")
                new[3] = kb(exp)
            if kind == "size" and re.fullmatch(r"\d+(\.\d+)?", new[4]):
                # "vs budget": against the reference budget in KB of column 5.
                d = exp / 1024 - float(new[4])
                vs = f"{d:+.1f} KB ({100 * d / float(new[4]):+.1f}%)".replace("+-", "-")
                if new[5] != vs:
                    problems.append(f"README line {i + 1}: {t} {fl} 'vs budget' shows {new[5]}, expected {vs}")
                    new[5] = vs
        lines[i] = "| " + " | ".join(new) + " |"
    # The line that says where the tables' sizes come from.
    stamp = (f"Sizes from [bench/size-budget.toml](bench/size-budget.toml): commit "
             f"`{measured.get('commit', '?')}`, {measured.get('date', '?')}, {measured.get('rustc', '?')}.")
    found = [i for i, line in enumerate(lines) if line.startswith("Sizes from [bench/size-budget.toml]")]
    if not found:
        problems.append("README: no line 'Sizes from [bench/size-budget.toml](...): commit ...' "
                        "naming the measurement")
    for i in found:
        if lines[i] != stamp:
            problems.append(f"README line {i + 1}: {lines[i]!r} should be {stamp!r}")
            lines[i] = stamp
    for kind, flavours in (("overview", BUDGETED), ("size", BUDGETED)):
        for t in TARGETS:
            for fl in flavours:
                if (kind, t, fl) not in seen:
                    problems.append(f"README: the {kind} size table has no row for {t} {fl}")
    return problems, "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["measure", "check", "check-readme"])
    ap.add_argument("--targets", choices=["host", "arm", "all"], default="host")
    ap.add_argument("--tls", action="store_true",
                    help="measure: also the +tls builds (for the README's TLS table; 8 more builds)")
    ap.add_argument("--write", action="store_true",
                    help="measure: record the sizes in size-budget.toml; check-readme: fix the README")
    args = ap.parse_args()

    if args.action == "check-readme":
        measured = load().get("measured", {})
        with open(README) as f:
            text = f.read()
        problems, fixed = readme_check(text, measured)
        if args.write and fixed != text:
            with open(README, "w") as f:
                f.write(fixed)
            print(f"README.md: {len(problems)} figure(s) rewritten from bench/size-budget.toml")
            problems = readme_check(fixed, measured)[0]
        if problems:
            print("README size tables differ from bench/size-budget.toml [measured] "
                  f"(commit {measured.get('commit', '?')}):")
            for p in problems:
                print("  " + p)
            print("Fix: python3 bench/sizes.py check-readme --write (after measure --targets all --write)")
            return 1
        print(f"README size tables match bench/size-budget.toml (measured at {measured.get('commit', '?')}, "
              f"{measured.get('date', '?')}, {measured.get('rustc', '?')})")
        return 0

    if args.write and (args.action != "measure" or args.targets != "all"):
        ap.error("--write records a full measurement: use measure --targets all --write")
    commit = source_commit()  # before the builds, which take minutes
    flavours = available_flavours(ROOT) + (["tokio+tls", "runtime-free+tls"] if args.tls else [])
    sizes = measure(ROOT, flavours, args.targets, lambda *a: print(*a, file=sys.stderr))
    budget = load_budget()
    print(f"{'target':<32} {'flavour':<18} {'bytes':>10} {'limit':>10}")
    for t, per in sizes.items():
        if t.startswith("_"):
            continue
        for fl, size in per.items():
            limit = budget.get(t, {}).get(fl)
            print(f"{t:<32} {fl:<18} {size if size is not None else 'n/a':>10} "
                  f"{limit if limit is not None else '-':>10}")
    for k, why in sizes["_notes"].items():
        print(f"  n/a {k}: {why}")
    if args.action == "measure":
        if args.write:
            if sizes["_notes"]:
                print("not written: every target and flavour must build (see n/a above)")
                return 1
            with open(BUDGET, "w") as f:
                f.write(render_budget(sizes, commit))
            print("written: bench/size-budget.toml (now run: python3 bench/sizes.py check-readme --write)")
        return 0
    bad = check(sizes, budget)
    missing = [f"{t}/{fl}" for t, per in sizes.items() if not t.startswith("_")
               for fl, s in per.items() if s is not None and budget.get(t, {}).get(fl) is None]
    bad += [f"{m}: no limit in bench/size-budget.toml" for m in missing]
    bad += [f"{k}: could not be measured: {why}" for k, why in sizes["_notes"].items()]
    if bad:
        print("\nSIZE BUDGET CHECK FAILED:")
        for b in bad:
            print("  " + b)
        print("\nIf the growth is intended, re-measure (python3 bench/sizes.py measure --targets all --write,"
              " then check-readme --write) and say why in the commit message.")
        return 1
    print("size budget: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
