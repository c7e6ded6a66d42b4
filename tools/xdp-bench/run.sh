#!/usr/bin/env bash
# SMT's XDP receive program against an XDP_PASS-only program (docs/xdp.md,
# "Benchmark"): per-packet cost by bpf_prog_test_run_opts, and receive-side
# rate and CPU live on a veth. Prints the machine and Markdown tables.
# A report only: no pass or fail. Needs root; everything it creates lives in
# a private namespace of xdp-bench and goes away with it.
#
#   bash tools/xdp-bench/run.sh [SECONDS_PER_LIVE_RUN] [TEST_RUN_REPEAT]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build"
seconds="${1:-3}"
repeat="${2:-1000000}"
if ((EUID != 0)); then
  echo "run.sh: must run as root" >&2
  exit 1
fi
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$build" -DSMT_BUILD_BPF=ON >/dev/null
fi
cmake --build "$build" -j2 --target xdp-bench >/dev/null

model="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "## xdp-bench"
echo
echo "Machine: $model, $(nproc) vCPUs, kernel $(uname -r)," \
  "$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1) guest;" \
  "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
"$build/tools/xdp-bench/xdp-bench" --seconds "$seconds" --repeat "$repeat"
