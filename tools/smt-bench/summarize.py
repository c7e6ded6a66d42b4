#!/usr/bin/env python3
"""Turns one tools/bench.sh results folder into results.json, results.md and plots.

    python3 tools/smt-bench/summarize.py RESULTS_DIR

Reads runs.jsonl (one smt-bench JSON line per run, with stack_name and label
added by bench.sh), machine.txt, sockperf.txt, crypto.md, setup.md, notes.txt.
"""
import json
import os
import re
import shutil
import subprocess
import sys

STACKS = ["smt-xdp", "smt-raw", "tcp", "tls"]
NAMES = {"smt-xdp": "SMT (AF_XDP)", "smt-raw": "SMT (raw socket)", "tcp": "TCP",
         "tls": "TLS 1.3/TCP"}
MODES = [("rtt/same-vcpu-block", "blocking waits, client and server on vCPU 0"),
         ("rtt/cross-vcpu-block", "blocking waits, client on vCPU 0, server on vCPU 1"),
         ("rtt/cross-vcpu-poll", "busy-polling, client on vCPU 0, server on vCPU 1")]


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def fmt(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}"


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def size_name(n):
    if n >= 1 << 20:
        return f"{n >> 20} MiB"
    if n >= 1024:
        return f"{n >> 10} KiB"
    return f"{n} B"


def find(runs, stack, label, size=None, conc=None, conns=None):
    for r in runs:
        if r["stack_name"] != stack or r["label"] != label:
            continue
        if size is not None and r["size"] != size:
            continue
        if conc is not None and r["concurrency"] != conc:
            continue
        if conns is not None and r["connections"] != conns:
            continue
        return r
    return None


def get(r, key):
    return None if r is None else r[key]


def cpu(r):
    return None if r is None else r["client_cpu_us_per_rpc"] + r["server_cpu_us_per_rpc"]


def sockperf_rtt(text):
    """sockperf ping-pong --full-rtt: the median round trip, µs."""
    m = re.search(r"percentile 50\.000\s*=\s*([\d.]+)", text)
    return float(m.group(1)) if m else None


def plot(out, name, title, xlabel, ylabel, series, logx=True, logy=True):
    """series: {label: [(x, y), ...]}; writes NAME.png with gnuplot if present."""
    if shutil.which("gnuplot") is None:
        return None
    data = os.path.join(out, f"{name}.dat")
    with open(data, "w") as f:
        for label, pts in series.items():
            f.write(f"# {label}\n")
            for x, y in pts:
                if y is not None:
                    f.write(f"{x} {y}\n")
            f.write("\n\n")
    plots = ", ".join(f"'{data}' index {i} with linespoints title '{label}'"
                      for i, label in enumerate(series))
    script = "\n".join([
        "set terminal pngcairo size 900,560 noenhanced" if has_cairo() else
        "set terminal png size 900,560 noenhanced",
        f"set output '{os.path.join(out, name + '.png')}'",
        f"set title '{title}'", f"set xlabel '{xlabel}'", f"set ylabel '{ylabel}'",
        "set logscale x" if logx else "", "set logscale y" if logy else "",
        "set key left top", "set grid", f"plot {plots}", ""])
    subprocess.run(["gnuplot"], input=script, text=True, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.remove(data)
    return f"{name}.png"


_cairo = None


def has_cairo():
    global _cairo
    if _cairo is None:
        r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
        _cairo = "pngcairo" in (r.stdout + r.stderr)
    return _cairo


def main():
    out = sys.argv[1]
    runs = [json.loads(l) for l in read(os.path.join(out, "runs.jsonl")).splitlines() if l.strip()]
    machine = dict(l.split("=", 1) for l in read(os.path.join(out, "machine.txt")).splitlines()
                   if "=" in l)
    notes = [l for l in read(os.path.join(out, "notes.txt")).splitlines() if l.strip()]
    sp = sockperf_rtt(read(os.path.join(out, "sockperf.txt")))
    md = []
    w = md.append
    w("# SMT against TCP and TLS 1.3 over TCP")
    w("")
    w(f"Machine: {machine.get('cpu_model', '?')}, {machine.get('vcpus', '?')} vCPUs, kernel "
      f"{machine.get('kernel', '?')}, {machine.get('openssl', '?')}; commit "
      f"{machine.get('commit', '?')}; load average at the end {machine.get('loadavg', '?')}.")
    w("SMT runs on topology x (XDP attached with smtctl), TCP and TLS on topology k (no XDP); "
      "both A — W — B over veths. RTTs in µs; CPU = client + server CPU-µs per RPC (getrusage).")
    w("")
    targets = []

    # 1. Unloaded RTT.
    w("## 1. Unloaded RTT, one RPC at a time")
    for label, what in MODES:
        w("")
        w(f"### {what}")
        w("")
        w("| size | " + " | ".join(f"{NAMES[s]} p50 / p99 / p99.9 (CPU)" for s in STACKS) +
          " | SMT(AF_XDP)/TLS p50 | p99 |")
        w("|---:|" + "---:|" * (len(STACKS) + 2))
        sizes = sorted({r["size"] for r in runs if r["label"] == label})
        for size in sizes:
            cells = []
            for s in STACKS:
                r = find(runs, s, label, size)
                cells.append("–" if r is None else
                             f"{fmt(r['p50_us'])} / {fmt(r['p99_us'])} / {fmt(r['p999_us'])} "
                             f"({fmt(cpu(r))})")
            x, t = find(runs, "smt-xdp", label, size), find(runs, "tls", label, size)
            rp50, rp99 = ratio(get(x, "p50_us"), get(t, "p50_us")), ratio(get(x, "p99_us"),
                                                                          get(t, "p99_us"))
            w(f"| {size_name(size)} | " + " | ".join(cells) + f" | {fmt(rp50, 2)} | {fmt(rp99, 2)} |")
            if size <= 4096 and label == "rtt/same-vcpu-block":
                targets.append((f"same-vCPU blocking p50, {size_name(size)}", rp50, "≤ 0.8"))
            if size <= 4096 and label == "rtt/cross-vcpu-poll":
                targets.append((f"busy-poll p50, {size_name(size)}", rp50, "≤ 0.5"))
        img = plot(out, "rtt-" + label.split("/")[1], f"median RTT, {what}", "message size (B)",
                   "µs", {NAMES[s]: [(r["size"], r["p50_us"]) for r in runs
                                     if r["stack_name"] == s and r["label"] == label]
                          for s in STACKS})
        if img:
            w("")
            w(f"![median RTT, {what}]({img})")
    tcp64 = find(runs, "tcp", "rtt/cross-vcpu-block", 64)
    w("")
    w(f"Calibration: sockperf TCP ping-pong, 64 B, same placement as cross-vCPU blocking: "
      f"median RTT {fmt(sp)} µs; smt-bench TCP 64 B p50 {fmt(get(tcp64, 'p50_us'))} µs "
      f"(ratio {fmt(ratio(get(tcp64, 'p50_us'), sp), 2)}, target within 15 %).")

    # 2. Loaded throughput.
    w("")
    w("## 2. Loaded throughput (client vCPU 0, server vCPU 1, blocking waits)")
    w("")
    w("TCP/TLS: one connection per outstanding RPC (an epoll client, one thread). SMT: every "
      "RPC on one socket to one peer.")
    w("")
    w("| size | outstanding | " + " | ".join(f"{NAMES[s]} RPCs/s (p99 µs)" for s in STACKS) +
      " | SMT(AF_XDP)/TLS |")
    w("|---:|---:|" + "---:|" * (len(STACKS) + 1))
    load = [r for r in runs if r["label"].startswith("load/")]
    for size in sorted({r["size"] for r in load}):
        for conc in sorted({r["concurrency"] for r in load}):
            cells = []
            for s in STACKS:
                r = find(runs, s, f"load/c{conc}", size)
                cells.append("–" if r is None else f"{r['rpcs_per_s']:.0f} ({fmt(r['p99_us'])})")
            x, t = find(runs, "smt-xdp", f"load/c{conc}", size), find(runs, "tls", f"load/c{conc}",
                                                                      size)
            rr = ratio(get(x, "rpcs_per_s"), get(t, "rpcs_per_s"))
            w(f"| {size_name(size)} | {conc} | " + " | ".join(cells) + f" | {fmt(rr, 2)} |")
    best = {s: max([r["rpcs_per_s"] for r in load if r["stack_name"] == s and r["size"] == 64],
                   default=None) for s in STACKS}
    targets.append(("64 B RPCs/s, best of any concurrency", ratio(best["smt-xdp"], best["tls"]),
                    "≥ 1.5"))
    img = plot(out, "throughput-64B", "64 B RPCs/s against outstanding RPCs", "outstanding RPCs",
               "RPCs/s", {NAMES[s]: [(r["concurrency"], r["rpcs_per_s"]) for r in load
                                     if r["stack_name"] == s and r["size"] == 64] for s in STACKS},
               logy=False)
    if img:
        w("")
        w(f"![64 B throughput]({img})")

    # 3. Head-of-line blocking.
    hol = [r for r in runs if r["label"].startswith("hol/")]
    if hol:
        w("")
        w("## 3. Head-of-line blocking: 64 B RPCs beside a stream of 1 MiB messages")
        w("")
        w("| stack | case | connections | p50 µs | p99 µs | p99.9 µs | stream MB/s |")
        w("|---|---|---:|---:|---:|---:|---:|")
        for r in hol:
            w(f"| {NAMES[r['stack_name']]} | {r['label'][4:]} | {r['connections'] or '–'} | "
              f"{fmt(r['p50_us'])} | {fmt(r['p99_us'])} | {fmt(r['p999_us'])} | "
              f"{fmt(r['background_mb_per_s'])} |")
        x = find(runs, "smt-xdp", "hol/stream")
        targets.append(("64 B p99 under a 1 MiB stream vs one TLS connection",
                        ratio(get(x, "p99_us"), get(find(runs, "tls", "hol/stream"), "p99_us")),
                        "≤ 0.2"))
        targets.append(("64 B p99 under a 1 MiB stream vs a TLS pool of 4",
                        ratio(get(x, "p99_us"),
                              get(find(runs, "tls", "hol/stream-pool4"), "p99_us")), "≤ 0.7"))

    crypto = read(os.path.join(out, "crypto.md"))
    if crypto:
        w("")
        w("## 6. Record crypto: seal/open against openssl speed (tools/microbench/run.sh)")
        w("")
        w(crypto.strip())
    setup = read(os.path.join(out, "setup.md"))
    if setup:
        w("")
        w("## 7. smtd session set-up (tools/smtd-bench/run.sh; TLS connect + handshake: to come)")
        w("")
        w(setup.strip())

    w("")
    w("## Targets (ratios SMT(AF_XDP)/TLS)")
    w("")
    w("| target | ratio | goal |")
    w("|---|---:|---|")
    for name, r, goal in targets:
        w(f"| {name} | {fmt(r, 2)} | {goal} |")

    w("")
    w("## Thread placement")
    w("")
    w("| run | client allowed | client ran on | server ran on | server threads |")
    w("|---|---|---|---|---:|")
    seen = set()
    for r in runs:
        key = (r["stack_name"], r["label"])
        if key in seen:
            continue
        seen.add(key)
        w(f"| {r['stack_name']} {r['label']} | {r['client_cpus_allowed']} | {r['client_ran_on']} "
          f"| {r['server_ran_on']} | {r['server_threads']} |")
    if notes:
        w("")
        w("## Notes")
        w("")
        for n in notes:
            w(f"- {n}")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"machine": machine, "sockperf_tcp_64B_rtt_us": sp, "notes": notes,
                   "targets": [{"target": n, "ratio": r, "goal": g} for n, r, g in targets],
                   "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
