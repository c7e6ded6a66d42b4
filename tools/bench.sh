#!/usr/bin/env bash
# SMT against TCP and TLS 1.3 over TCP (docs/BENCHMARKS.md): one command that
# builds, sets up two identical A — W — B topologies, runs every comparison
# with tools/smt-bench, and writes results.json, results.md and plots.
#
#   bash tools/bench.sh [RESULTS_DIR]     # as root on Debian 12; default results/bench-<time>
#
# Topology "x" carries SMT: XDP attached with smtctl on A and B (native mode
# on the veths), smtd on both with certificates from a fresh test CA. Topology
# "k" carries TCP and TLS and has no XDP: native XDP on a veth disables TSO on
# its peer (PLATFORM.md), which would handicap TCP. Everything is removed at
# the end, on failure and on Ctrl-C.
#
# Environment: SMT_BENCH_SCALE (default 1): multiply every RPC count (0.2 for
# a quick look); SMT_BENCH_SKIP_CRYPTO=1 skips the seal/open comparison.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
out="${1:-$root/results/bench-$(date -u +%Y%m%d-%H%M%S)}"
scale="${SMT_BENCH_SCALE:-1}"

if ((EUID != 0)); then
  echo "bench: run as root (it creates network namespaces and attaches XDP)" >&2
  exit 1
fi
if (($(nproc) < 2)); then
  echo "bench: needs at least 2 vCPUs (client and server on different vCPUs)" >&2
  exit 1
fi
bash "$root/tools/install-deps.sh"
echo "bench: building smtd, smtctl, smt-bench (first run: a few minutes)"
cmake -S "$root" -B "$build" -DSMT_BUILD_BPF=ON -DSMT_FAULT= >/dev/null
cmake --build "$build" -j"$(nproc)" --target smtd smtctl smt-bench smtd-bench >/dev/null
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

smtd="$build/user/smtd"
smtctl="$build/tools/smtctl/smtctl"
bench="$build/tools/smt-bench/smt-bench"

id="$$"
work="$(mktemp -d /tmp/smt-bench.XXXXXX)"
pins="/sys/fs/bpf/smt-bench-$id"
mkdir -p "$out"
jsonl="$out/runs.jsonl"
: >"$jsonl"
: >"$out/notes.txt"
pids=()
ok=0

ns() { echo "smtbench-$1-$2-$id"; }  # ns TOPO HOST
in_ns() {  # nsenter, not `ip netns exec`: that remounts /sys and hides bpffs
  local n="$1"
  shift
  nsenter --net="/run/netns/$n" -- "$@"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for h in a b; do
    [[ -e "/run/netns/$(ns x $h)" ]] &&
      in_ns "$(ns x $h)" "$smtctl" --pin-root "$pins/$h" detach "${h}0" >/dev/null 2>&1 || true
  done
  for t in x k; do for h in a w b; do ip netns del "$(ns $t $h)" 2>/dev/null || true; done; done
  rm -rf "$pins"
  if ((ok)); then rm -rf "$work"; else echo "bench: FAILED (exit $rc); logs kept in $work" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "bench: interrupted" >&2; exit 130' INT TERM

# topo TAG NET: A (10.NET.1.1) — W — B (10.NET.2.1).
topo() {
  local t="$1" net="$2" a w b
  a="$(ns "$t" a)" w="$(ns "$t" w)" b="$(ns "$t" b)"
  for n in "$a" "$w" "$b"; do ip netns add "$n"; done
  ip link add a0 netns "$a" type veth peer name wa netns "$w"
  ip link add b0 netns "$b" type veth peer name wb netns "$w"
  ip -n "$a" addr add "10.$net.1.1/24" dev a0
  ip -n "$w" addr add "10.$net.1.254/24" dev wa
  ip -n "$w" addr add "10.$net.2.254/24" dev wb
  ip -n "$b" addr add "10.$net.2.1/24" dev b0
  for pair in "$a a0" "$w wa" "$w wb" "$b b0"; do
    set -- $pair
    ip -n "$1" link set "$2" up
    ip -n "$1" link set lo up
  done
  ip -n "$a" route add default via "10.$net.1.254"
  ip -n "$b" route add default via "10.$net.2.254"
  in_ns "$w" sysctl -qw net.ipv4.ip_forward=1
}

echo "bench: topologies x (SMT, XDP attached) and k (TCP/TLS, no XDP); a fresh test CA"
topo x 97
topo k 96
bash "$root/tools/smt-certs" "$work/certs" hosta hostb >/dev/null
mkdir -p "$pins"
for h in a b; do
  if [[ $h == a ]]; then me=10.97.1.1 peer=10.97.2.1 host=hosta other=hostb; else
    me=10.97.2.1 peer=10.97.1.1 host=hostb other=hosta; fi
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
  in_ns "$(ns x $h)" "$smtctl" --pin-root "$pins/$h" attach "${h}0" >"$work/smtctl-$h.log"
  # A simple command in the background, not the in_ns function: nsenter
  # execs the program, so $! is its pid and kill reaches it.
  nsenter --net="/run/netns/$(ns x $h)" -- "$smtd" --foreground --config "$work/$h.conf" \
    --state-dir "$pins/$h" --socket "$work/$h.sock" >"$work/smtd-$h.log" 2>&1 &
  pids+=($!)
done
for h in a b; do
  for _ in $(seq 100); do [[ -S "$work/$h.sock" ]] && break; sleep 0.05; done
  [[ -S "$work/$h.sock" ]] || { cat "$work/smtd-$h.log" >&2; exit 1; }
done

# The four stacks: topology, server address, extra client and server options.
declare -A topo_of=([smt-xdp]=x [smt-raw]=x [tcp]=k [tls]=k)
stack_args() {  # stack_args STACK SIDE
  case "$1" in
    smt-xdp | smt-raw)
      local dp=auto
      [[ $1 == smt-raw ]] && dp=raw
      local sock="$work/a.sock"
      [[ $2 == server ]] && sock="$work/b.sock"
      echo "--stack smt --datapath $dp --smtd $sock" ;;
    tcp) echo "--stack tcp" ;;
    tls)
      if [[ $2 == server ]]; then
        echo "--stack tls --cert $work/certs/hostb.crt --key $work/certs/hostb.key"
      else
        echo "--stack tls --ca $work/certs/ca.crt --tls-name hostb"
      fi ;;
  esac
}
server_host() { [[ ${topo_of[$1]} == x ]] && echo 10.97.2.1 || echo 10.96.2.1; }

server_pid=""
# start_server STACK SERVER_CPU WAIT
start_server() {
  local st="$1" cpu="$2" wait="$3" log="$work/server-$1-$2-$3.log"
  # shellcheck disable=SC2046
  nsenter --net="/run/netns/$(ns "${topo_of[$st]}" b)" -- "$bench" server \
    $(stack_args "$st" server) --port 5001 --cpu "$cpu" --wait "$wait" >"$log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do grep -q ready "$log" 2>/dev/null && return 0; sleep 0.05; done
  echo "bench: $st server did not start:" >&2
  cat "$log" >&2
  exit 1
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
n() { python3 -c "print(max(50, int($1 * $scale)))"; }  # a count, scaled

# client STACK LABEL CLIENT_CPU ARGS...: one run, one JSON line into runs.jsonl.
client() {
  local st="$1" label="$2" cpu="$3" err="$work/client.err"
  shift 3
  local line
  # shellcheck disable=SC2046
  if line="$(in_ns "$(ns "${topo_of[$st]}" a)" "$bench" client $(stack_args "$st" client) \
    --host "$(server_host "$st")" --port 5001 --cpu "$cpu" --label "$label" "$@" 2>"$err")"; then
    echo "$line" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["stack_name"]=sys.argv[1]; print(json.dumps(d))' "$st" >>"$jsonl"
  else
    echo "$st $label $*: FAILED: $(tr '\n' ' ' <"$err")" | tee -a "$out/notes.txt" >&2
  fi
  if grep -q "AF_XDP unavailable" "$err"; then
    echo "$st $label: AF_XDP unavailable, ran on the raw socket: $(grep -m1 'AF_XDP' "$err")" >>"$out/notes.txt"
  fi
}

stacks=(smt-xdp smt-raw tcp tls)
sizes=(64 1024 4096 16384 65536 1048576)
count_for() { case "$1" in 1048576) n 300 ;; 65536 | 16384) n 2000 ;; *) n 5000 ;; esac; }

echo "bench: 1. unloaded RTT (4 stacks x ${#sizes[@]} sizes x 3 modes)"
# mode: label server-cpu wait (the client is always on vCPU 0)
for mode in "same-vcpu-block 0 block" "cross-vcpu-block 1 block" "cross-vcpu-poll 1 poll"; do
  set -- $mode
  label="$1" scpu="$2" wait="$3"
  for st in "${stacks[@]}"; do
    start_server "$st" "$scpu" "$wait"
    for size in "${sizes[@]}"; do
      client "$st" "rtt/$label" 0 --wait "$wait" --size "$size" --count "$(count_for "$size")"
    done
    stop_server
    echo "  $label $st done"
  done
done

echo "bench: 2. loaded throughput (64 B, 1 KiB, 8 KiB at 1, 10, 50, 200 outstanding)"
for st in "${stacks[@]}"; do
  start_server "$st" 1 block
  for size in 64 1024 8192; do
    for conc in 1 10 50 200; do
      client "$st" "load/c$conc" 0 --size "$size" --concurrency "$conc" --count "$(n 20000)" \
        --warmup "$((conc * 2))"
    done
  done
  stop_server
  echo "  $st done"
done

echo "bench: 3. head-of-line blocking (64 B RPCs beside a stream of 1 MiB messages)"
for st in smt-xdp tcp tls; do
  start_server "$st" 1 block
  client "$st" "hol/alone" 0 --size 64 --count "$(n 3000)"
  client "$st" "hol/stream" 0 --size 64 --count "$(n 3000)" --background --connections 1
  if [[ $st != smt-* ]]; then
    client "$st" "hol/stream-pool4" 0 --size 64 --count "$(n 3000)" --background --connections 4
  fi
  stop_server
done

echo "bench: sockperf calibration of the TCP path (topology k, same placement as cross-vcpu-block)"
nsenter --net="/run/netns/$(ns k b)" -- taskset -c 1 sockperf server --tcp -i 10.96.2.1 -p 11111 >"$work/sockperf-server.log" 2>&1 &
sp_pid=$!
pids+=("$sp_pid")
sleep 0.5
in_ns "$(ns k a)" taskset -c 0 sockperf ping-pong --tcp -i 10.96.2.1 -p 11111 -m 64 -t 3 \
  --full-rtt >"$out/sockperf.txt" 2>&1 || echo "sockperf failed (see sockperf.txt)" >>"$out/notes.txt"
kill -INT "$sp_pid" 2>/dev/null || true
sleep 0.2
kill -KILL "$sp_pid" 2>/dev/null || true
wait "$sp_pid" 2>/dev/null || true

if [[ "${SMT_BENCH_SKIP_CRYPTO:-0}" != 1 ]]; then
  echo "bench: 6. seal/open against openssl speed (tools/microbench/run.sh)"
  SMT_BENCH_SECONDS=2 bash "$root/tools/microbench/run.sh" >"$out/crypto.md" 2>"$work/crypto.err" ||
    { echo "microbench failed: $(tail -3 "$work/crypto.err")" >>"$out/notes.txt"; }
  echo "bench: 7. smtd session set-up (tools/smtd-bench/run.sh)"
  bash "$root/tools/smtd-bench/run.sh" "$(n 200)" >"$out/setup.md" 2>"$work/setup.err" ||
    { echo "smtd-bench failed: $(tail -3 "$work/setup.err")" >>"$out/notes.txt"; }
fi

# Machine and smtd state, for the report.
{
  echo "cpu_model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
  echo "vcpus=$(nproc)"
  echo "kernel=$(uname -r)"
  echo "openssl=$(openssl version)"
  echo "commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "smt_datapath_x=$(grep -h -m2 'AF_XDP socket\|datapath socket' "$work"/smtd-b.log | tr '\n' ' ')"
} >"$out/machine.txt"

python3 "$root/tools/smt-bench/summarize.py" "$out"
ok=1
echo "bench: results in $out (results.md, results.json, *.png)"
