#!/usr/bin/env bash
# Record-layer micro-benchmark: SMT's RecordCipher seal/open against this CPU's
# AES-128-GCM limit as `openssl speed` measures it, on one pinned vCPU.
# A report, not a gate: it never fails on the numbers.
#
#   bash tools/microbench/run.sh            # from any directory, as root on Debian 12
#   SMT_BENCH_CPU=0 bash tools/microbench/run.sh   # pin to another vCPU
#
# Environment: SMT_BENCH_CPU (default 1, or 0 on a one-vCPU machine),
# SMT_BENCH_SECONDS (openssl seconds per run, default 3),
# SMT_BENCH_MIN_TIME (Google Benchmark min time per case, default 1).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build"
sizes=(64 1400 16384)
seconds="${SMT_BENCH_SECONDS:-3}"
min_time="${SMT_BENCH_MIN_TIME:-1}"
if [[ -n "${SMT_BENCH_CPU:-}" ]]; then
  cpu="$SMT_BENCH_CPU"
elif (($(nproc) > 1)); then
  cpu=1
else
  cpu=0
fi

bash "$root/tools/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target smt-record-bench -j"$(nproc)" >/dev/null
bench="$build/tools/microbench/smt-record-bench"
[[ -x "$bench" ]] || { echo "run.sh: $bench was not built" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "pinned to vCPU $cpu (taskset -c $cpu); openssl: $(openssl version)" >&2
for n in "${sizes[@]}"; do
  for dir in seal open; do
    flag=()
    [[ "$dir" == open ]] && flag=(-decrypt)
    echo "openssl speed -aead${flag[*]:+ ${flag[*]}} -bytes $n ... (${seconds}s)" >&2
    taskset -c "$cpu" openssl speed -elapsed -seconds "$seconds" -aead "${flag[@]}" \
      -bytes "$n" -evp aes-128-gcm >"$work/openssl-$dir-$n.txt" 2>&1
  done
done
echo "smt-record-bench ..." >&2
taskset -c "$cpu" "$bench" --benchmark_min_time="$min_time" --benchmark_format=json \
  --benchmark_out="$work/bench.json" --benchmark_out_format=json >/dev/null 2>"$work/bench.err" ||
  { cat "$work/bench.err" >&2; exit 1; }

cpu_model="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
python3 - "$work" "$cpu" "$cpu_model" "${sizes[@]}" <<'EOF'
import json, re, sys

work, cpu, model, sizes = sys.argv[1], sys.argv[2], sys.argv[3], [int(s) for s in sys.argv[4:]]

def openssl_rate(path, n):
    """Bytes/s from one `openssl speed -aead -bytes n` run (OpenSSL 3.0 output).

    Prefer the progress line, which has the exact count and time:
      Doing AES-128-GCM for 3s on 64 size blocks: 7609938 AES-128-GCM's in 3.00s
    and fall back to the table row ("AES-128-GCM  162345.34k": 1000s of bytes/s).
    """
    text = open(path, errors="replace").read()
    m = re.search(r"on (\d+) size blocks?: (\d+) \S+ in ([\d.]+)s", text)
    if m and int(m.group(1)) == n and float(m.group(3)) > 0:
        return int(m.group(2)) * n / float(m.group(3))
    rows = re.findall(r"^AES-128-GCM\s+([\d.]+)k?\s*$", text, re.M)
    if rows:
        return float(rows[-1]) * 1e3
    return None

bench = {}
for b in json.load(open(f"{work}/bench.json"))["benchmarks"]:
    m = re.match(r"BM_(Seal|Open)/(\d+)", b["name"])
    if m and b.get("run_type", "iteration") == "iteration" and "error_occurred" not in b:
        bench[(m.group(1).lower(), int(m.group(2)))] = b["bytes_per_second"]

def gbs(v):
    return "n/a" if v is None else f"{v / 1e9:.2f}"

def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"

print(f"CPU: {model} (pinned to vCPU {cpu} with taskset -c {cpu}); GB/s = 10^9 bytes/s")
print()
print("| size | SMT seal GB/s | openssl seal GB/s | ratio | SMT open GB/s | openssl open GB/s | ratio |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for n in sizes:
    s_seal, s_open = bench.get(("seal", n)), bench.get(("open", n))
    o_seal = openssl_rate(f"{work}/openssl-seal-{n}.txt", n)
    o_open = openssl_rate(f"{work}/openssl-open-{n}.txt", n)
    print(f"| {n} | {gbs(s_seal)} | {gbs(o_seal)} | {ratio(s_seal, o_seal)} "
          f"| {gbs(s_open)} | {gbs(o_open)} | {ratio(s_open, o_open)} |")
print()
print("size N = TLS record content bytes. An SMT record of content N holds the 16-byte")
print("inner header + N-16 data bytes; its AEAD covers N+1 bytes (the content type) with the")
print("5-byte record header as AAD, and it is N+22 bytes on the wire. openssl speed -aead")
print("encrypts N bytes with a 13-byte AAD, one EVP init per operation; its -decrypt loop")
print("checks a fixed fake tag (the check fails, the work done is the same).")
print("SMT seal: one record sealed in place, a fresh sequence number each time. SMT open:")
print("batches of ~64 KiB of sealed records copied (untimed) then opened in place (timed).")
EOF
