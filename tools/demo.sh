#!/usr/bin/env bash
# SMT's demo: an encrypted RPC service between two hosts on one machine.
#
#   bash tools/demo.sh        # as root on Debian 12, from any directory
#
# Host A and host B are network namespaces joined through a forwarding
# namespace W (A — W — B, two veth pairs, W routes). On each host the demo
# attaches SMT's XDP program with smtctl and starts smtd with its own state,
# certificates from a fresh test CA, and a key log (debug only: it lets the
# demo decrypt W's capture to prove what it did not contain). B runs an echo
# service, A a client: session set-up through smtd, then encrypted RPCs of
# several sizes. It prints the set-up time, RTT percentiles per size, the XDP
# counters, and what W saw: SMT packets, no plaintext, everything decryptable
# only with the keys. Everything is removed again on success, failure and
# Ctrl-C (logs of a failed run are kept and named).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
count="${SMT_DEMO_COUNT:-200}"
sizes="${SMT_DEMO_SIZES:-64,1024,16384,65536}"

if ((EUID != 0)); then
  echo "demo: run as root (it creates network namespaces and attaches XDP)" >&2
  exit 1
fi
bash "$root/tools/install-deps.sh"
echo "demo: building (first run: a few minutes)"
cmake -S "$root" -B "$build" -DSMT_FAULT= >/dev/null
cmake --build "$build" -j"$(nproc)" --target smtd smtctl smt-echo smt-decode >/dev/null

smtd="$build/user/smtd"
smtctl="$build/tools/smtctl/smtctl"
echo_bin="$build/tools/smt-echo/smt-echo"
decode="$build/tools/smt-decode/smt-decode"

id="$$"
ns_a="smtdemo-a-$id" ns_w="smtdemo-w-$id" ns_b="smtdemo-b-$id"
addr_a=10.99.1.1 addr_b=10.99.2.1
work="$(mktemp -d /tmp/smt-demo.XXXXXX)"
pins="/sys/fs/bpf/smt-demo-$id"
pids=()
ok=0

in_ns() {  # nsenter, not `ip netns exec`: that remounts /sys and hides bpffs
  local ns="$1"
  shift
  nsenter --net="/run/netns/$ns" -- "$@"
}
# A background process in a namespace; its pid (nsenter execs it) in pids.
bg_in_ns() {
  local ns="$1" log="$2"
  shift 2
  nsenter --net="/run/netns/$ns" -- "$@" >"$log" 2>&1 &
  pids+=($!)
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for h in a b; do
    local ns="smtdemo-$h-$id"
    [[ -e "/run/netns/$ns" ]] && in_ns "$ns" "$smtctl" --pin-root "$pins/$h" detach "${h}0" \
      >/dev/null 2>&1 || true
  done
  for ns in "$ns_a" "$ns_w" "$ns_b"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$pins"
  if ((ok)); then
    rm -rf "$work"
  else
    echo "demo: FAILED (exit $rc); logs and captures kept in $work" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }

step "topology: A ($addr_a) — W (router) — B ($addr_b)"
for ns in "$ns_a" "$ns_w" "$ns_b"; do ip netns add "$ns"; done
ip link add a0 netns "$ns_a" type veth peer name wa netns "$ns_w"
ip link add b0 netns "$ns_b" type veth peer name wb netns "$ns_w"
ip -n "$ns_a" addr add "$addr_a/24" dev a0
ip -n "$ns_w" addr add 10.99.1.254/24 dev wa
ip -n "$ns_w" addr add 10.99.2.254/24 dev wb
ip -n "$ns_b" addr add "$addr_b/24" dev b0
for pair in "$ns_a a0" "$ns_w wa" "$ns_w wb" "$ns_b b0"; do
  set -- $pair
  ip -n "$1" link set "$2" up
  ip -n "$1" link set lo up
done
ip -n "$ns_a" route add default via 10.99.1.254
ip -n "$ns_b" route add default via 10.99.2.254
ip netns exec "$ns_w" sysctl -qw net.ipv4.ip_forward=1

step "certificates (fresh test CA) and smtd on both hosts"
bash "$root/tools/smt-certs" "$work/certs" hosta hostb >/dev/null
mkdir -p "$pins"
for h in a b; do
  if [[ $h == a ]]; then me=$addr_a peer=$addr_b host=hosta other=hostb; else
    me=$addr_b peer=$addr_a host=hostb other=hosta; fi
  cat >"$work/$h.conf" <<EOF
[local]
address = $me
listen = $me:7853
certificate = $work/certs/$host.crt
key = $work/certs/$host.key
ca = $work/certs/ca.crt

[peer $other]
address = $peer
control = $peer:7853
identity = dns:$other

[uid 0]
ports = any
ephemeral = yes
trusted = yes
EOF
  in_ns "smtdemo-$h-$id" "$smtctl" --pin-root "$pins/$h" attach "${h}0" >/dev/null
  bg_in_ns "smtdemo-$h-$id" "$work/smtd-$h.log" "$smtd" --foreground --config "$work/$h.conf" \
    --state-dir "$pins/$h" --socket "$work/$h.sock" --keylog "$work/$h.keylog"
done
for h in a b; do
  for _ in $(seq 100); do [[ -S "$work/$h.sock" ]] && break; sleep 0.05; done
  [[ -S "$work/$h.sock" ]] || { echo "demo: smtd on $h did not start:" >&2; cat "$work/smtd-$h.log" >&2; exit 1; }
done
echo "smtd A and B are up (XDP attached with smtctl; key logs are DEBUG ONLY, for the proof below)"

step "capture on W"
# -Z root: tcpdump would drop to its own user, which cannot write in $work.
bg_in_ns "$ns_w" "$work/tcpdump.log" tcpdump -Z root -i wb -U -B 65536 -s 2048 -w "$work/w.pcap" 'ip proto 253'
tcpdump_pid=$!
for _ in $(seq 100); do grep -q "listening" "$work/tcpdump.log" 2>/dev/null && break; sleep 0.05; done

step "echo service on B, $count RPCs per size ($sizes) from A"
bg_in_ns "$ns_b" "$work/server.log" "$echo_bin" server --port 5000 --smtd "$work/b.sock"
for _ in $(seq 100); do grep -q "ready" "$work/server.log" 2>/dev/null && break; sleep 0.05; done
in_ns "$ns_a" "$echo_bin" client --peer "$addr_b" --port 5000 --smtd "$work/a.sock" \
  --sizes "$sizes" --count "$count" | tee "$work/client.log"
grep -q " 0 failed, 0 mismatched" "$work/client.log"

sleep 0.2
kill "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true

step "XDP on B (smtctl stats; zero counters left out)"
in_ns "$ns_b" "$smtctl" --pin-root "$pins/b" stats | awk '$2 != "0"'
step "the session and the datapath, from smtd's logs"
for h in a b; do
  grep -h "session serial\|datapath socket\|AF_XDP socket" "$work/smtd-$h.log" |
    sed "s/^smtd\[[0-9]*\]: /  $h: /"
done

step "what W saw"
cat "$work/a.keylog" "$work/b.keylog" >"$work/keys"
if ! "$decode" --keylog "$work/keys" -r "$work/w.pcap" --no-control --leak-check \
  >"$work/decoded.txt" 2>"$work/decode.log"; then
  cat "$work/decode.log" >&2
  exit 1
fi
packets=$(grep -o '[0-9]* SMT packets' "$work/decode.log" | cut -d' ' -f1)
messages=$(grep -o '[0-9]* messages' "$work/decode.log" | cut -d' ' -f1)
windows=$(grep -o '[0-9]* plaintext windows' "$work/decode.log" | cut -d' ' -f1)
echo "W carried $packets SMT packets ($(stat -c %s "$work/w.pcap") bytes captured)."
echo "With both hosts' keys, smt-decode recovers $messages messages from them;"
echo "none of their $windows 16-byte plaintext windows appears anywhere in the capture."
ok=1
echo
echo "demo: OK — authenticated session set-up, encrypted RPCs, nothing readable on the wire"
