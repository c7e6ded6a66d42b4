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
# SMT_BENCH_MIN_TIME (Google Benchmark min time per case, default 1),
# SMT_BENCH_ROUNDS (pairs of openssl and SMT runs per case, default 3: the
# table shows the medians, and the ratio is the median of each pair's ratio).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build"
sizes=(64 1400 16384)
seconds="${SMT_BENCH_SECONDS:-3}"
min_time="${SMT_BENCH_MIN_TIME:-1}"
rounds="${SMT_BENCH_ROUNDS:-3}"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: SMT_BENCH_ROUNDS must be a positive integer" >&2; exit 2; }
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

echo "pinned to vCPU $cpu (taskset -c $cpu); openssl: $(openssl version); $rounds rounds" >&2
# Each SMT case runs right after its openssl run, and every pair is repeated
# in rounds: a shared vCPU's speed drifts by 10-20 % over seconds here, which
# a ratio of two runs far apart in time would report as a difference.
for ((r = 1; r <= rounds; r++)); do
  for n in "${sizes[@]}"; do
    for dir in seal open; do
      flag=()
      [[ "$dir" == open ]] && flag=(-decrypt)
      echo "round $r: openssl speed -aead${flag[*]:+ ${flag[*]}} -bytes $n (${seconds}s), then SMT $dir" >&2
      taskset -c "$cpu" openssl speed -elapsed -seconds "$seconds" -aead "${flag[@]}" \
        -bytes "$n" -evp aes-128-gcm >"$work/openssl-$dir-$n-$r.txt" 2>&1
      case_name="BM_${dir^}/$n"
      taskset -c "$cpu" "$bench" --benchmark_filter="^${case_name}(/|\$)" \
        --benchmark_min_time="$min_time" --benchmark_format=json \
        --benchmark_out="$work/bench-$dir-$n-$r.json" --benchmark_out_format=json \
        >/dev/null 2>"$work/bench.err" || { cat "$work/bench.err" >&2; exit 1; }
    done
  done
done

cpu_model="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
python3 - "$work" "$cpu" "$cpu_model" "$rounds" "${sizes[@]}" <<'EOF'
import json, re, statistics, sys

work, cpu, model = sys.argv[1], sys.argv[2], sys.argv[3]
rounds, sizes = int(sys.argv[4]), [int(s) for s in sys.argv[5:]]

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

def smt_rate(path, direction, n):
    """Bytes/s of BM_Seal/n or BM_Open/n from one smt-record-bench JSON file."""
    try:
        data = json.load(open(path))
    except (OSError, ValueError):
        return None
    for b in data.get("benchmarks", []):
        m = re.match(r"BM_(Seal|Open)/(\d+)(/|$)", b["name"])
        if (m and m.group(1).lower() == direction and int(m.group(2)) == n
                and b.get("run_type", "iteration") == "iteration" and "error_occurred" not in b):
            return b["bytes_per_second"]
    return None

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

# (direction, n) -> (SMT median, openssl median, median of the pairs' ratios)
cases = {}
for n in sizes:
    for d in ("seal", "open"):
        smt = [smt_rate(f"{work}/bench-{d}-{n}-{r}.json", d, n) for r in range(1, rounds + 1)]
        ossl = [openssl_rate(f"{work}/openssl-{d}-{n}-{r}.txt", n) for r in range(1, rounds + 1)]
        pairs = [a / b for a, b in zip(smt, ossl) if a is not None and b]
        cases[(d, n)] = (median(smt), median(ossl), median(pairs))

def gbs(v):
    return "n/a" if v is None else f"{v / 1e9:.2f}"

def ratio(r):
    return "n/a" if r is None else f"{r:.2f}"

print(f"CPU: {model} (pinned to vCPU {cpu} with taskset -c {cpu}); GB/s = 10^9 bytes/s; "
      f"medians of {rounds} rounds, each SMT run right after its openssl run; ratio = the "
      "median of the rounds' ratios")
print()
print("| size | SMT seal GB/s | openssl seal GB/s | ratio | SMT open GB/s | openssl open GB/s | ratio |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for n in sizes:
    s_seal, o_seal, r_seal = cases[("seal", n)]
    s_open, o_open, r_open = cases[("open", n)]
    print(f"| {n} | {gbs(s_seal)} | {gbs(o_seal)} | {ratio(r_seal)} "
          f"| {gbs(s_open)} | {gbs(o_open)} | {ratio(r_open)} |")
print()
print("size N = TLS record content bytes. An SMT record of content N holds the 16-byte")
print("inner header + N-16 data bytes; its AEAD covers N+1 bytes (the content type) with the")
print("5-byte record header as AAD, and it is N+22 bytes on the wire. openssl speed -aead")
print("encrypts N bytes with a 13-byte AAD, one EVP init per operation; its -decrypt loop")
print("checks a fixed fake tag (the check fails, the work done is the same).")
print("SMT seal: one record sealed in place, a fresh sequence number each time. SMT open:")
print("batches of ~64 KiB of sealed records copied (untimed) then opened in place (timed).")
EOF
