#!/usr/bin/env python3
"""Turns one tools/bench.sh results folder into results.json, results.md and plots.

    python3 tools/smt-bench/summarize.py RESULTS_DIR

Reads runs.jsonl (one smt-bench JSON line per run, with stack_name, the
machine's busy time and the topology's loss counters added by bench.sh),
machine.txt, sockperf.txt, loss.txt, xsk-limit.json, crypto.md, setup.md,
profiles/*.txt and notes.txt. Every section is optional: a run of some items
(SMT_BENCH_ITEMS) gets the sections of those items.
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


def section_rtt(out, runs, sp, w, targets):
    if not any(r["label"].startswith("rtt/") for r in runs):
        return
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
    w("")


def section_load(out, runs, w, targets):
    load = [r for r in runs if r["label"].startswith("load/")]
    if not load:
        return
    w("## 2. Loaded throughput (client vCPU 0, server vCPU 1, blocking waits)")
    w("")
    w("TCP/TLS: one connection per outstanding RPC (an epoll client, one thread). SMT: every "
      "RPC on one socket to one peer.")
    w("")
    w("| size | outstanding | " + " | ".join(f"{NAMES[s]} RPCs/s (p99 µs)" for s in STACKS) +
      " | SMT(AF_XDP)/TLS |")
    w("|---:|---:|" + "---:|" * (len(STACKS) + 1))
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
    w("")


def section_hol(runs, w, targets):
    hol = [r for r in runs if r["label"].startswith("hol/")]
    if not hol:
        return
    w("## 3. Head-of-line blocking: 64 B RPCs beside a stream of 1 MiB messages")
    w("")
    w("Each stack streams as fast as it can (the stream MB/s column); `paced` runs hold every "
      "stack's stream to the same rate. TCP retransmitted segments are counted on A and B "
      "(nstat) during the run.")
    w("")
    w("| stack | case | connections | p50 µs | p99 µs | p99.9 µs | stream MB/s | TCP retransmits |")
    w("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in hol:
        w(f"| {NAMES[r['stack_name']]} | {r['label'][4:]} | {r['connections'] or '–'} | "
          f"{fmt(r['p50_us'])} | {fmt(r['p99_us'])} | {fmt(r['p999_us'])} | "
          f"{fmt(r['background_mb_per_s'])} | {r.get('tcp_retrans_segs', '–')} |")
    x = find(runs, "smt-xdp", "hol/stream")
    if x is not None:
        targets.append(("64 B p99 under a 1 MiB stream vs one TLS connection",
                        ratio(get(x, "p99_us"), get(find(runs, "tls", "hol/stream"), "p99_us")),
                        "≤ 0.2"))
        targets.append(("64 B p99 under a 1 MiB stream vs a TLS pool of 4",
                        ratio(get(x, "p99_us"),
                              get(find(runs, "tls", "hol/stream-pool4"), "p99_us")), "≤ 0.7"))
    x = find(runs, "smt-xdp", "hol/paced")
    if x is not None:
        w("")
        w(f"Paced to {fmt(get(x, 'background_rate_mb_per_s'), 0)} MB/s (not a target): SMT(AF_XDP)/TLS "
          f"64 B p99 {fmt(ratio(get(x, 'p99_us'), get(find(runs, 'tls', 'hol/paced'), 'p99_us')), 2)}"
          f" against one connection, "
          f"{fmt(ratio(get(x, 'p99_us'), get(find(runs, 'tls', 'hol/paced-pool4'), 'p99_us')), 2)}"
          f" against a pool of 4.")
    w("")


def section_loss(out, runs, w):
    loss = [r for r in runs if r["label"].startswith("loss/")]
    if not loss:
        return
    counters = dict(l.split("=", 1) for l in
                    read(os.path.join(out, "loss.txt")).replace(" ", "\n").splitlines() if "=" in l)
    w("## 4. Loss: 64 B RPCs with 1 % of the transport's packets dropped on W")
    w("")
    rates = []
    for t, what in (("x", "SMT packets on topology x"), ("k", "TCP segments on topology k")):
        seen, dropped = int(counters.get(f"loss_{t}_seen", 0)), int(counters.get(f"loss_{t}_dropped", 0))
        if seen:
            rates.append(f"{what}: {dropped} of {seen} dropped ({100 * dropped / seen:.2f} %)")
    w("selftests/loss.bpf.c on W's tc ingress, both directions. " + "; ".join(rates) + ".")
    w("")
    w("| stack | outstanding | p50 / p99 / p99.9 µs, no loss | p50 / p99 / p99.9 µs, 1 % loss "
      "| RPCs/s, no loss / 1 % | TCP retransmits / timeouts (1 %) |")
    w("|---|---:|---:|---:|---:|---:|")
    for s in STACKS:
        for conc in (1, 10):
            a, b = find(runs, s, f"loss/0pct-c{conc}"), find(runs, s, f"loss/1pct-c{conc}")
            if a is None and b is None:
                continue
            lat = lambda r: "–" if r is None else (
                f"{fmt(r['p50_us'])} / {fmt(r['p99_us'])} / {fmt(r['p999_us'])}")
            rps = lambda r: "–" if r is None else f"{r['rpcs_per_s']:.0f}"
            tcp = "–" if b is None or s.startswith("smt") else (
                f"{b.get('tcp_retrans_segs', '–')} / {b.get('tcp_timeouts', '–')}")
            w(f"| {NAMES[s]} | {conc} | {lat(a)} | {lat(b)} | {rps(a)} / {rps(b)} | {tcp} |")
    x, t = find(runs, "smt-xdp", "loss/1pct-c1"), find(runs, "tls", "loss/1pct-c1")
    w("")
    w(f"SMT(AF_XDP)/TLS at 1 % loss, one RPC at a time: p99 "
      f"{fmt(ratio(get(x, 'p99_us'), get(t, 'p99_us')), 2)}, p99.9 "
      f"{fmt(ratio(get(x, 'p999_us'), get(t, 'p999_us')), 2)}.")
    w("")


def crypto_rows(text):
    """crypto.md's table: {size: (smt seal, ossl seal, ratio, smt open, ossl open, ratio)}."""
    rows = {}
    for m in re.finditer(r"^\|\s*(\d+)\s*\|" + r"\s*([\d.]+)\s*\|" * 6, text, re.M):
        rows[int(m.group(1))] = tuple(float(m.group(i)) for i in range(2, 8))
    return rows


def section_bulk(out, runs, w):
    bulk = [r for r in runs if r["label"].startswith("bulk/")]
    if not bulk:
        return
    w("## 5. Bulk: goodput and CPU per GB (requests of 1 MiB and 64 MiB, 64 B replies, "
      "2 outstanding)")
    w("")
    w("Goodput = request bytes per second. CPU-s/GB: the client's and server's processes "
      "(getrusage), and the whole machine's busy time during the client's run (/proc/stat, "
      "both vCPUs: also the kernel's forwarding on W and softirq work no process is charged "
      "for), per 10^9 request bytes.")
    w("")
    w("| stack | request | goodput MB/s | processes CPU-s/GB | machine CPU-s/GB | "
      "goodput / TCP's |")
    w("|---|---:|---:|---:|---:|---:|")
    for label in sorted({r["label"] for r in bulk}, key=lambda l: len(l)):
        tcp = find(runs, "tcp", label)
        for s in STACKS:
            r = find(runs, s, label)
            if r is None:
                continue
            gb = r["size"] * r["count"] / 1e9
            proc = cpu(r) * r["count"] / 1e6 / gb
            mach = r.get("machine_busy_s")
            mach = None if mach is None else mach / gb
            gp = r["size"] * r["count"] / r["seconds"] / 1e6
            tgp = None if tcp is None else tcp["size"] * tcp["count"] / tcp["seconds"] / 1e6
            w(f"| {NAMES[s]} | {size_name(r['size'])} | {gp:.0f} | {fmt(proc, 2)} | "
              f"{fmt(mach, 2)} | {fmt(ratio(gp, tgp), 2)} |")
    limits = []
    c = crypto_rows(read(os.path.join(out, "crypto.md"))).get(16384)
    if c:
        limits.append(f"this CPU's AEAD limit (SMT's record seal / open at 16 KiB, one vCPU, "
                      f"item 6): {c[0] * 1000:.0f} / {c[3] * 1000:.0f} MB/s")
    try:
        x = json.loads(read(os.path.join(out, "xsk-limit.json")).strip().splitlines()[-1])
        limits.append(f"AF_XDP {x.get('mode', '?')} mode's packet limit on a veth "
                      f"(tools/xdp-bench --xsk-only): {x['xsk_frames_per_s']:.0f} frames/s = "
                      f"{x['xsk_payload_gbit_s'] * 1000 / 8:.0f} MB/s of payload at MTU "
                      f"{x.get('mtu', '?')}")
    except (ValueError, KeyError, IndexError):
        pass
    if limits:
        w("")
        w("Limits: " + "; ".join(limits) + ".")
    w("")


def section_crypto(out, w, targets):
    crypto = read(os.path.join(out, "crypto.md"))
    if not crypto:
        return
    w("## 6. Record crypto: seal/open against openssl speed (tools/microbench/run.sh)")
    w("")
    w(crypto.strip())
    w("")
    goals = {64: ("≥ 0.7", "64 B"), 1400: ("≥ 0.85", "1400 B"), 16384: ("≥ 0.9", "16 KiB")}
    for size, row in sorted(crypto_rows(crypto).items()):
        if size in goals:
            goal, name = goals[size]
            targets.append((f"seal vs openssl speed, {name}", row[2], goal))
            targets.append((f"open vs openssl speed -decrypt, {name}", row[5], goal))


def section_setup(out, w):
    setup = read(os.path.join(out, "setup.md"))
    if not setup:
        return
    w("## 7. Session set-up: smtd against a TLS 1.3 TCP connect + handshake "
      "(tools/smtd-bench/run.sh)")
    w("")
    w(setup.strip())
    w("")


def section_profiles(out, w):
    d = os.path.join(out, "profiles")
    if not os.path.isdir(d):
        return
    w("## Profiles (perf record -a -e cpu-clock -g, both vCPUs; top entries)")
    for name in sorted(os.listdir(d)):
        rows = [l for l in read(os.path.join(d, name)).splitlines()
                if l.strip() and not l.startswith("#")]
        w("")
        w(f"`profiles/{name}`:")
        w("")
        w("```")
        w("\n".join(rows[:12]))
        w("```")
    w("")


def section_targets(w, targets):
    if not targets:
        return
    w("## Targets (ratios SMT(AF_XDP)/TLS; crypto: SMT/openssl)")
    w("")
    w("| target | ratio | goal | |")
    w("|---|---:|---|---|")
    for name, r, goal in targets:
        w(f"| {name} | {fmt(r, 2)} | {goal} | {met(r, goal)} |")
    w("")


def met(r, goal):
    if r is None:
        return "–"
    bound = float(goal.split()[1])
    return "met" if (r <= bound if goal.startswith("≤") else r >= bound) else "missed"


def section_placement(runs, w):
    w("## Thread placement")
    w("")
    w("| runs | client allowed | client ran on | server ran on | server threads |")
    w("|---|---|---|---|---:|")
    groups = {}
    for r in runs:
        key = (r["client_cpus_allowed"], r["client_ran_on"], r["server_ran_on"],
               r["server_threads"])
        groups.setdefault(key, []).append(f"{r['stack_name']} {r['label']}")
    for (allowed, ran, server, threads), names in groups.items():
        names = sorted(set(names))
        w(f"| {', '.join(names)} | {allowed} | {ran} | {server} | {threads} |")
    w("")


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
      f"{machine.get('commit', '?')}; load average at the start {machine.get('loadavg_start', '?')}, "
      f"at the end {machine.get('loadavg', '?')}.")
    w("SMT runs on topology x (XDP attached with smtctl), TCP and TLS on topology k (no XDP); "
      "both A — W — B over veths. RTTs in µs; CPU = client + server CPU-µs per RPC (getrusage).")
    w("")
    targets = []
    section_rtt(out, runs, sp, w, targets)
    section_load(out, runs, w, targets)
    section_hol(runs, w, targets)
    section_loss(out, runs, w)
    section_bulk(out, runs, w)
    section_crypto(out, w, targets)
    section_setup(out, w)
    section_targets(w, targets)
    section_profiles(out, w)
    section_placement(runs, w)
    if notes:
        w("## Notes")
        w("")
        for n in notes:
            w(f"- {n}")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md).rstrip() + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"machine": machine, "sockperf_tcp_64B_rtt_us": sp, "notes": notes,
                   "targets": [{"target": n, "ratio": r, "goal": g, "met": met(r, g)}
                               for n, r, g in targets],
                   "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
