#!/usr/bin/env bash
# Handshake and session set-up latency of smtd (docs/smtd.md §7). Starts one
# smtd in a fresh network namespace on loopback, runs smtd-bench there as its
# peer, both pinned to one vCPU (taskset -c 1), and prints a Markdown table.
# A report only: no pass or fail. Needs root (namespace, bpffs).
#
#   bash tools/smtd-bench/run.sh [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build"
rounds="${1:-200}"
cmake --build "$build" --target smtd smtd-bench >/dev/null
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

sfx="$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
ns="smtdbench-$sfx"
dir="$(mktemp -d /tmp/smtd-bench-XXXXXX)"
pin="/sys/fs/bpf/smtd-bench-$sfx"
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$dir" "$pin"
}
trap cleanup EXIT

"$root/tools/smt-certs" "$dir/certs" smtd client >/dev/null
cat >"$dir/smtd.conf" <<CONF
[local]
address = 10.0.0.2
listen = 127.0.0.1:7853
certificate = $dir/certs/smtd.crt
key = $dir/certs/smtd.key
ca = $dir/certs/ca.crt
[peer client]
address = 10.0.0.1
identity = dns:client
[uid 0]
ports = any
CONF
ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns=(nsenter --net="/run/netns/$ns" -- taskset -c 1)
"${in_ns[@]}" "$build/user/smtd" --config "$dir/smtd.conf" --state-dir "$pin" \
  --socket "$dir/smtd.sock" 2>"$dir/smtd.log" &
pid=$!
for _ in $(seq 100); do [[ -S "$dir/smtd.sock" ]] && grep -q ready: "$dir/smtd.log" && break; sleep 0.05; done

echo "smtd-bench: $rounds rounds each; smtd and smtd-bench on vCPU 1; $(nproc) vCPUs," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r), $(openssl version)"
echo
echo "| handshake | rounds | resumed | handshake µs (median / p90) | OPEN→READY µs | both µs |"
echo "|---|---|---|---|---|---|"
"${in_ns[@]}" "$build/tools/smtd-bench/smtd-bench" --connect 127.0.0.1:7853 \
  --cert "$dir/certs/client.crt" --key "$dir/certs/client.key" --ca "$dir/certs/ca.crt" \
  --identity dns:smtd --socket "$dir/smtd.sock" -n "$rounds"
