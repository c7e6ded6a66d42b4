#!/usr/bin/env bash
# SMT's XDP receive program against an XDP_PASS-only program (docs/xdp.md,
# "Benchmark"): per-packet cost by bpf_prog_test_run_opts, and receive-side
# rate and CPU live on a veth; then AF_XDP copy mode's packet limit on that
# veth (XskLink to XskLink). Prints the machine and Markdown tables.
# A report only: no pass or fail. Needs root; everything it creates lives in
# a private namespace of xdp-bench and goes away with it.
#
#   bash tools/xdp-bench/run.sh [SECONDS_PER_LIVE_RUN] [TEST_RUN_REPEAT]
#
# The AF_XDP phase alone, as one JSON line (for tools/bench.sh):
#
#   build/tools/xdp-bench/xdp-bench --xsk-only --seconds 3 --json
#   {"xsk_frames_per_s":..., "xsk_payload_gbit_s":..., "xsk_sent_frames_per_s":...,
#    "xsk_seen_frames_per_s":..., "sender_cpu_pct":..., "receiver_cpu_pct":...,
#    "napi_cpu_pct":..., "sender_cpu_ns_per_frame":..., "receiver_cpu_ns_per_frame":...,
#    "softirq_cpu_pct":[CPU0,CPU1], "busy_cpu_pct":[..], "steal_cpu_pct":[..], "veth_drops":...,
#    "kernel_rx_dropped":..., "kernel_rx_ring_full":..., "kernel_fill_ring_empty":...,
#    "mtu":1500, "payload_bytes":1480, "mode":"copy", "napi":"softirq", "seconds":3.00,
#    "threaded_xsk_frames_per_s":..., ... the same figures with rx0's NAPI threaded}
#
# xsk_frames_per_s: frames the receiving XskLink handed out per second;
# xsk_payload_gbit_s: that times payload_bytes (the SMT packet: MTU - 20 B of
# IPv4, Ethernet and IP headers not counted) times 8. The unprefixed figures
# are veth's default (rx0's NAPI as softirq on the sender's CPU); counters are
# over the measured interval.
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
"$build/tools/xdp-bench/xdp-bench" --seconds "$seconds" --repeat "$repeat" --xsk
