#!/usr/bin/env bash
# Handshake and session set-up latency of smtd (docs/smtd.md §7). Starts one
# smtd in a fresh network namespace on loopback, runs smtd-bench there as its
# peer, both pinned to one vCPU (taskset -c 1), and prints a Markdown table.
# Then, as the baseline, the same for a TLS 1.3 TCP connect + handshake: an
# `smt-bench server --stack tls` with the same certificates, mutual
# authentication and tickets, timed by `smt-bench client --handshakes`, in
# the same namespace and on the same vCPU. A report only: no pass or fail.
# Needs root (namespace, bpffs).
#
#   bash tools/smtd-bench/run.sh [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build"
rounds="${1:-200}"
cmake --build "$build" --target smtd smtd-bench smt-bench >/dev/null
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

sfx="$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
ns="smtdbench-$sfx"
dir="$(mktemp -d /tmp/smtd-bench-XXXXXX)"
pin="/sys/fs/bpf/smtd-bench-$sfx"
pid=""
tls_pid=""
cleanup() {
  [[ -n "$tls_pid" ]] && kill "$tls_pid" 2>/dev/null && wait "$tls_pid" 2>/dev/null
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

# The TLS baseline starts after smtd-bench is done, so neither server wakes
# during the other's rounds.
bench="$build/tools/smt-bench/smt-bench"
"${in_ns[@]}" "$bench" server --stack tls --port 7854 --cert "$dir/certs/smtd.crt" \
  --key "$dir/certs/smtd.key" --tickets --client-ca "$dir/certs/ca.crt" >"$dir/tls.log" 2>&1 &
tls_pid=$!
for _ in $(seq 100); do grep -q ready "$dir/tls.log" && break; sleep 0.05; done
# One JSON line from smt-bench client --handshakes -> one table row.
tls_row() {
  python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
print("| %s | %d | %d | %.0f / %.0f | – | %.0f / %.0f |" % (sys.argv[1], d["rounds"], d["resumed"],
      d["p50_us"], d["p90_us"], d["both_p50_us"], d["both_p90_us"]))' "$1"
}
for kind in full resumed; do
  resume=()
  [[ "$kind" == resumed ]] && resume=(--resume)
  "${in_ns[@]}" "$bench" client --stack tls --host 127.0.0.1 --port 7854 \
    --ca "$dir/certs/ca.crt" --tls-name smtd --client-cert "$dir/certs/client.crt" \
    --client-key "$dir/certs/client.key" --handshakes "$rounds" "${resume[@]}" \
    --label "setup-$kind" | tls_row "TLS 1.3 TCP connect + handshake ($kind)"
done
echo
echo "TLS rows: smt-bench client --handshakes, mutual TLS with the same ECDSA P-256 certificates," \
  "TLS_AES_128_GCM_SHA256, resumed with the previous round's ticket (psk_dhe_ke). handshake:" \
  "socket + connect + handshake until SSL_connect returns, as smtd-bench times it; both: that" \
  "plus one 64 B echo RPC on the new connection, answered once the server has verified the" \
  "client's certificate (and sent its ticket)."
