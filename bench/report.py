"""Turns a bench results dict into a Markdown report and an SVG chart
(hand-written SVG, no plotting library needed).

    python3 bench/report.py bench/results/STAMP/results.json   # re-render md + svg
    python3 bench/report.py --results-page bench/results/STAMP/results.json > bench/RESULTS.md
"""
import html
import json
import os
import sys

SCEN_DESC = {"s1": "1 conn x 1 stream", "s2": "10 conns x 10 streams", "s3": "100 conns x 1 stream"}
COLORS = {"s1": "#4e79a7", "s2": "#f28e2b", "s3": "#59a14f"}


def f(v, fmt="{:.0f}", dash="-"):
    return dash if v is None else fmt.format(v)


def servers_in_order(result):
    names = []
    for r in result["throughput"]:
        if r["server"] not in names:
            names.append(r["server"])
    for n in result.get("extras", {}):
        if n not in names and not n.startswith("_"):
            names.append(n)
    return names


def markdown(result):
    m = result["meta"]
    mc = m["machine"]
    out = []
    out.append(f"Run: {m['date_utc']} on `{mc['hostname']}` — {mc['cpu']}, {mc['cores']} cores"
               f"{', ' + mc['virtualization'] if mc.get('virtualization') and mc['virtualization'] != 'none' else ''}, "
               f"Linux {mc['kernel']}, {mc['rustc']}, {mc['h2load']}; git `{m['git']}`.")
    nice = m["args"].get("nice") or 0
    out.append(f"Pinning: {m['pinning']}" + (f", both at niceness {nice}" if nice else "") +
               f". Engine: {m['engine']}; {m['args']['rounds']} interleaved round(s), "
               f"{m['args']['duration']:g} s per measured run; figures are medians over rounds, "
               "spread = (max - min) / median of req/s.")
    out.append("")
    out.append("### Throughput and latency (h2load, unary Echo \"hello\")")
    out.append("")
    out.append("| scenario | server | req/s | spread | p50 ms | p90 ms | p99 ms | server CPU µs/req | ok rounds | contaminated |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in result["throughput"]:
        out.append(f"| {r['scenario']} ({SCEN_DESC.get(r['scenario'], '')}) | {r['server']} | "
                   f"{f(r['req_s_median'])} | {f(r.get('req_s_spread_pct'), '{:.0f}%')} | "
                   f"{f(r['p50_ms_median'], '{:.3f}')} | {f(r.get('p90_ms_median'), '{:.3f}')} | "
                   f"{f(r['p99_ms_median'], '{:.3f}')} | {f(r['cpu_us_per_req_median'], '{:.1f}')} | "
                   f"{r['ok_rounds']}/{r['rounds']} | {r['contaminated_rounds']} |")
    out.append("")
    out.append("### Memory, start-up and idle wake-ups")
    out.append("")
    ex = result.get("extras", {})
    conns = next((v.get("conns_asked") for v in ex.values() if isinstance(v, dict) and v.get("conns_asked")), None)
    out.append(f"| server | idle RSS MiB | peak RSS MiB (load) | RSS per idle conn KiB (at {conns or '-'}) "
               "| start -> first reply ms | wake-ups/s, 0 conns | wake-ups/s, 10 idle conns |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in servers_in_order(result):
        rows = [r for r in result["throughput"] if r["server"] == name]
        idle = max([r["idle_rss_mib_median"] for r in rows if r["idle_rss_mib_median"]] or [None], key=lambda x: x or 0)
        peak = max([r["peak_rss_mib_median"] for r in rows if r["peak_rss_mib_median"]] or [None], key=lambda x: x or 0)
        e = ex.get(name, {})
        per_conn = f(e.get("rss_per_conn_kib"), "{:.1f}")
        if e.get("conns_established") is not None and e.get("conns_established") != e.get("conns_asked"):
            per_conn += f" ({e['conns_established']} accepted)"
        out.append(f"| {name} | {f(idle, '{:.1f}')} | {f(peak, '{:.1f}')} | {per_conn} | "
                   f"{f(e.get('startup_ms_median'), '{:.1f}')} | {f(e.get('idle0_ctxsw_per_s'), '{:.2f}')} | "
                   f"{f(e.get('idle10_ctxsw_per_s'), '{:.2f}')} |")
    wake = []
    for name in servers_in_order(result):
        e = ex.get(name, {})
        for label, what in (("idle0", "no connections"), ("idle10", "10 idle connections")):
            rate = e.get(f"{label}_ctxsw_per_s")
            if not rate:
                continue
            secs = m["args"]["wakeup_secs"]
            threads = sorted(e.get(f"{label}_busy_threads", {}).items(), key=lambda kv: -kv[1])[:4]
            who = ", ".join(f"`{k.split(' ', 1)[-1]}` {v / secs:.1f}/s" for k, v in threads)
            wake.append(f"- {name}, {what}: {rate:.2f} context switches/s over {e.get(label + '_threads')} "
                        f"thread(s); busiest: {who}")
    if wake:
        out.append("")
        out.append("Which threads wake up while idle (from /proc/PID/task/*/status):")
        out.append("")
        out += wake
    sizes = result.get("sizes") or {}
    targets = [t for t in sizes if not t.startswith("_")]
    if targets:
        flavours = sorted({fl for t in targets for fl in sizes[t]}, key=lambda x: (x != "tokio", x))
        out.append("")
        out.append("### Stripped `echo-server` size (release, server feature only)")
        out.append("")
        out.append("| flavour | " + " | ".join(targets) + " |")
        out.append("| --- |" + " ---: |" * len(targets))
        for fl in flavours:
            cells = []
            for t in targets:
                b = sizes[t].get(fl)
                cells.append(f"{b / 1024:.0f} KiB ({b} B)" if b else "n/a")
            out.append(f"| {fl} | " + " | ".join(cells) + " |")
        for k, why in sizes.get("_notes", {}).items():
            out.append(f"\nn/a {k}: {why}")
    out.append("")
    return "\n".join(out) + "\n"


def svg(result):
    """Two panels: req/s and server CPU µs/request per server, one bar per scenario."""
    rows = result["throughput"]
    names = servers_in_order({"throughput": rows})
    scen = []
    for r in rows:
        if r["scenario"] not in scen:
            scen.append(r["scenario"])
    get = {(r["server"], r["scenario"]): r for r in rows}
    bar_h, gap, label_w, panel_w = 9, 10, 150, 300
    group_h = bar_h * len(scen) + gap
    top = 66
    height = top + group_h * len(names) + 40
    width = label_w + 2 * panel_w + 90
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    m = result["meta"]
    title = f"lean-grpc echo benchmark, {m['date_utc'][:10]}, {m['machine']['hostname']} ({m['machine']['cores']} cores; server core 0, h2load core 1)"
    parts.append(f'<text x="10" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>')
    x = label_w + 10
    for i, sk in enumerate(scen):
        parts.append(f'<rect x="{x}" y="26" width="10" height="10" fill="{COLORS.get(sk, "#999")}"/>')
        parts.append(f'<text x="{x + 14}" y="35">{sk}: {SCEN_DESC.get(sk, sk)}</text>')
        x += 170
    for p, (key, label, fmt) in enumerate([("req_s_median", "req/s (median; higher is better)", "{:.0f}"),
                                           ("cpu_us_per_req_median", "server CPU µs per request (lower is better)", "{:.1f}")]):
        x0 = label_w + p * (panel_w + 45)
        vals = [get[(n, s)][key] for n in names for s in scen if (n, s) in get and get[(n, s)][key]]
        vmax = max(vals) if vals else 1
        parts.append(f'<text x="{x0}" y="{top - 6}" font-weight="bold">{html.escape(label)}</text>')
        parts.append(f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{top + group_h * len(names)}" stroke="#333"/>')
        for gi, n in enumerate(names):
            y = top + gi * group_h
            if p == 0:
                parts.append(f'<text x="{label_w - 6}" y="{y + bar_h * len(scen) / 2 + 4}" text-anchor="end">'
                             f'{html.escape(n)}</text>')
            for si, s in enumerate(scen):
                v = get.get((n, s), {}).get(key)
                yy = y + si * bar_h
                if v is None:
                    parts.append(f'<text x="{x0 + 3}" y="{yy + bar_h - 1}" font-size="8" fill="#999">n/a</text>')
                    continue
                w = max(panel_w * v / vmax, 1)
                parts.append(f'<rect x="{x0}" y="{yy}" width="{w:.1f}" height="{bar_h - 1}" fill="{COLORS.get(s, "#999")}"/>')
                parts.append(f'<text x="{x0 + w + 3:.1f}" y="{yy + bar_h - 1}" font-size="8">{fmt.format(v)}</text>')
    parts.append(f'<text x="10" y="{height - 12}" font-size="9" fill="#555">Medians over '
                 f'{m["args"]["rounds"]} interleaved round(s); see results.json for every run.</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def gib(meminfo):
    """'24684096 kB' -> '23.5 GiB'."""
    try:
        return f"{int(str(meminfo).split()[0]) / 1024 / 1024:.1f} GiB"
    except (ValueError, IndexError):
        return str(meminfo)


def results_page(result, rel_dir):
    """bench/RESULTS.md: the run's tables and chart, with how to reproduce them."""
    m = result["meta"]
    mc = m["machine"]
    head = [
        "# Benchmark results",
        "",
        f"One real run of `bench/run` on {m['date_utc'][:10]} ({m['date_utc'][11:16]} UTC), machine "
        f"`{mc['hostname']}`: {mc['cpu']}, {mc['cores']} cores, {gib(mc.get('mem_total'))} RAM, "
        f"Linux {mc['kernel']} ({mc.get('virtualization') or 'bare metal'}). "
        "Every figure below comes from that run; the raw data (every round and attempt, "
        f"versions of every peer) is in [{rel_dir}/results.json]({rel_dir}/results.json).",
        "",
        f"![req/s and server CPU per request]({rel_dir}/chart.svg)",
        "",
        "Rerun on your machine with `bench/run` (full) or `bench/run --quick`; on a board, "
        "use `echo-client bench` from a workstation (see [bench/README.md](README.md)).",
        "",
        "",
    ]
    return "\n".join(head) + markdown(result)


def main():
    if sys.argv[1] == "--results-page":
        path = sys.argv[2]
        with open(path) as fh:
            result = json.load(fh)
        rel = os.path.relpath(os.path.dirname(os.path.abspath(path)), os.path.dirname(os.path.abspath(__file__)))
        print(results_page(result, rel))
        return
    path = sys.argv[1]
    with open(path) as fh:
        result = json.load(fh)
    base = os.path.dirname(path)
    with open(os.path.join(base, "results.md"), "w") as fh:
        fh.write(markdown(result))
    with open(os.path.join(base, "chart.svg"), "w") as fh:
        fh.write(svg(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
