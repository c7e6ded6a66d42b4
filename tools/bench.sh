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
# a quick look); SMT_BENCH_ITEMS (default "1 2 3 4 5 6 7"): the comparisons to
# run, numbered as in docs/BENCHMARKS.md; SMT_BENCH_STACKS (default "smt-xdp
# smt-raw tcp tls"): the stacks to run them on; SMT_BENCH_PROFILE=1: also record
# system-wide `perf record -e cpu-clock -g` profiles of the runs behind the
# targets (extra runs, not the measured ones) into RESULTS_DIR/profiles/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
out="${1:-$root/results/bench-$(date -u +%Y%m%d-%H%M%S)}"
scale="${SMT_BENCH_SCALE:-1}"
items=" ${SMT_BENCH_ITEMS:-1 2 3 4 5 6 7} "
for i in $items; do
  [[ $i =~ ^[1-7]$ ]] || { echo "bench: SMT_BENCH_ITEMS: '$i' is not an item 1-7" >&2; exit 2; }
done
want() { [[ $items == *" $1 "* ]]; }  # want ITEM
profile="${SMT_BENCH_PROFILE:-0}"

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
cmake --build "$build" -j"$(nproc)" --target smtd smtctl smt-bench smtd-bench xdp-bench \
  selftest_loss_object >/dev/null
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

echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)" >"$out/machine.txt"
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
n() { python3 -c "print(max(${2:-50}, int($1 * $scale)))"; }  # n COUNT [MIN]: a count, scaled

# busy_jiffies: the machine's busy time so far (all vCPUs, /proc/stat), in
# USER_HZ ticks: what a run cost including the kernel's work on W and in
# softirqs, which no process's getrusage sees.
busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }

# net_counters TOPO: one JSON object of the topology's counters: TCP
# retransmissions, timeouts and loss probes on A and B (nstat), packets W
# forwarded, and packets dropped by any interface of A, W or B.
net_counters() {
  python3 - "$(ns "$1" a)" "$(ns "$1" w)" "$(ns "$1" b)" <<'PY'
import json, subprocess, sys
def run(ns, *cmd):
    return subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "--", *cmd],
                          capture_output=True, text=True, check=True).stdout
c = {"tcp_retrans_segs": 0, "tcp_timeouts": 0, "tcp_loss_probes": 0, "if_dropped": 0,
     "w_forwarded": 0}
for i, ns in enumerate(sys.argv[1:]):
    k = json.loads(run(ns, "nstat", "-asz", "--json"))["kernel"]
    if i == 1:  # W
        c["w_forwarded"] += k.get("IpForwDatagrams", 0) + k.get("Ip6OutForwDatagrams", 0)
    c["tcp_retrans_segs"] += k.get("TcpRetransSegs", 0)
    c["tcp_timeouts"] += k.get("TcpExtTCPTimeouts", 0)
    c["tcp_loss_probes"] += k.get("TcpExtTCPLossProbes", 0)
    for link in json.loads(run(ns, "ip", "-s", "-j", "link")):
        st = link.get("stats64", {})
        c["if_dropped"] += st.get("rx", {}).get("dropped", 0) + st.get("tx", {}).get("dropped", 0)
print(json.dumps(c))
PY
}

# client STACK LABEL CLIENT_CPU ARGS...: one run, one JSON line into runs.jsonl.
client() {
  local st="$1" label="$2" cpu="$3" err="$work/client.err"
  shift 3
  local line b0 b1 t0 t1 n0 n1
  n0="$(net_counters "${topo_of[$st]}")"
  b0="$(busy_jiffies)" t0="$(date +%s.%N)"
  # shellcheck disable=SC2046
  if line="$(in_ns "$(ns "${topo_of[$st]}" a)" "$bench" client $(stack_args "$st" client) \
    --host "$(server_host "$st")" --port 5001 --cpu "$cpu" --label "$label" "$@" 2>"$err")"; then
    b1="$(busy_jiffies)" t1="$(date +%s.%N)"
    n1="$(net_counters "${topo_of[$st]}")"
    echo "$line" | python3 -c '
import json, os, sys
d = json.loads(sys.stdin.read())
d["stack_name"] = sys.argv[1]
d["machine_busy_s"] = (int(sys.argv[3]) - int(sys.argv[2])) / os.sysconf("SC_CLK_TCK")
d["client_wall_s"] = float(sys.argv[5]) - float(sys.argv[4])
before, after = json.loads(sys.argv[6]), json.loads(sys.argv[7])
d.update({k: after[k] - before[k] for k in after})
print(json.dumps(d))' "$st" "$b0" "$b1" "$t0" "$t1" "$n0" "$n1" >>"$jsonl"
  else
    echo "$st $label $*: FAILED: $(tr '\n' ' ' <"$err")" | tee -a "$out/notes.txt" >&2
  fi
  if grep -q "AF_XDP unavailable" "$err"; then
    echo "$st $label: AF_XDP unavailable, ran on the raw socket: $(grep -m1 'AF_XDP' "$err")" >>"$out/notes.txt"
  fi
}

# profiled STACK TAG CLIENT_CPU ARGS...: with SMT_BENCH_PROFILE=1, runs the
# client once more under a system-wide perf record (both vCPUs: client,
# server, and the kernel's forwarding on W) and keeps a flat profile.
profiled() {
  ((profile)) || return 0
  local st="$1" tag="$2" cpu="$3" data="$work/perf.data"
  shift 3
  mkdir -p "$out/profiles"
  # shellcheck disable=SC2046
  if perf record -q -a -g -e cpu-clock -o "$data" -- \
    nsenter --net="/run/netns/$(ns "${topo_of[$st]}" a)" -- "$bench" client \
    $(stack_args "$st" client) --host "$(server_host "$st")" --port 5001 --cpu "$cpu" \
    --label "profile/$tag" "$@" >/dev/null 2>"$work/perf.err"; then
    (
      set +o pipefail  # head closes the pipe early
      echo "# where the time went: by command and shared object (both vCPUs; swapper = idle)"
      perf report -i "$data" --no-children -g none --sort comm,dso --stdio 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -25
      echo "# top symbols"
      perf report -i "$data" --no-children -g none --sort comm,dso,sym --stdio 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -60
    ) >"$out/profiles/$st-$tag.txt"
  else
    echo "profile $st $tag failed: $(tail -2 "$work/perf.err" | tr '\n' ' ')" >>"$out/notes.txt"
  fi
  rm -f "$data"
}

read -r -a stacks <<<"${SMT_BENCH_STACKS:-smt-xdp smt-raw tcp tls}"
for st in "${stacks[@]}"; do
  [[ -n ${topo_of[$st]:-} ]] || { echo "bench: SMT_BENCH_STACKS: unknown stack '$st'" >&2; exit 2; }
done
sizes=(64 1024 4096 16384 65536 1048576)
count_for() { case "$1" in 1048576) n 300 ;; 65536 | 16384) n 2000 ;; *) n 5000 ;; esac; }

if want 1; then
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
      if [[ $label == cross-vcpu-poll && ($st == smt-xdp || $st == tls) ]]; then
        profiled "$st" poll-64B 0 --wait poll --size 64 --count "$(n 20000)"
      fi
      stop_server
      echo "  $label $st done"
    done
  done
fi

if want 2; then
  echo "bench: 2. loaded throughput (64 B, 1 KiB, 8 KiB at 1, 10, 50, 200 outstanding)"
  for st in "${stacks[@]}"; do
    start_server "$st" 1 block
    for size in 64 1024 8192; do
      for conc in 1 10 50 200; do
        client "$st" "load/c$conc" 0 --size "$size" --concurrency "$conc" --count "$(n 50000)" \
          --warmup "$((conc * 2))"
      done
    done
    if [[ $st == smt-xdp || $st == tls ]]; then
      for conc in 10 200; do
        profiled "$st" "load-64B-c$conc" 0 --size 64 --concurrency "$conc" --count "$(n 60000)" \
          --warmup "$((conc * 2))"
      done
    fi
    stop_server
    echo "  $st done"
  done
fi

hol_paced_mb=100  # MB/s: SMT's AF_XDP stream and TLS's both sustain more on this machine
if want 3; then
  echo "bench: 3. head-of-line blocking (64 B RPCs beside a stream of 1 MiB messages)"
  for st in "${stacks[@]}"; do
    [[ $st == smt-raw ]] && continue
    start_server "$st" 1 block
    client "$st" "hol/alone" 0 --size 64 --count "$(n 3000)"
    # As fast as each stack streams, then every stack's stream held to the
    # same rate (below what each sustains here), so the p99s compare the
    # same load.
    for case in "stream" "paced --background-rate $hol_paced_mb"; do
      set -- $case
      client "$st" "hol/$1" 0 --size 64 --count "$(n 3000)" --background --connections 1 "${@:2}"
      if [[ $st != smt-* ]]; then
        client "$st" "hol/$1-pool4" 0 --size 64 --count "$(n 3000)" --background --connections 4 \
          "${@:2}"
      fi
    done
    stop_server
  done
fi

# loss_attach TOPO PROTOCOL PERCENT: selftests/loss.bpf.c on the tc ingress of
# both of W's interfaces, dropping that IP protocol's packets at random.
loss_attach() {
  local t="$1" proto="$2" pct="$3" dir="$pins/loss-$1" bytes
  mkdir -p "$dir"
  bpftool prog load "$build/selftests/selftest_loss.bpf.o" "$dir/prog" type classifier \
    pinmaps "$dir"
  bytes="$(python3 -c 'import sys
t = min(int(float(sys.argv[1]) / 100 * 2**32), 2**32 - 1)
print(" ".join(str(b) for b in t.to_bytes(4, "little")))' "$pct")"
  # shellcheck disable=SC2086
  bpftool map update pinned "$dir/cfg_array" key 0 0 0 0 value $bytes
  bpftool map update pinned "$dir/cfg_array" key 1 0 0 0 value "$proto" 0 0 0
  for dev in wa wb; do
    in_ns "$(ns "$t" w)" tc qdisc add dev "$dev" clsact
    in_ns "$(ns "$t" w)" tc filter add dev "$dev" ingress bpf direct-action object-pinned "$dir/prog"
  done
}
loss_detach() {  # loss_detach TOPO: prints "SEEN DROPPED"
  local t="$1"
  for dev in wa wb; do in_ns "$(ns "$t" w)" tc qdisc del dev "$dev" clsact; done
  bpftool -j map dump pinned "$pins/loss-$t/stats_percpu" | python3 -c '
import json, sys
def num(v):
    return v if isinstance(v, int) else int.from_bytes(bytes(int(b, 16) for b in v), "little")
totals = {}
for e in json.load(sys.stdin):
    f = e.get("formatted", e)
    totals[num(f["key"])] = sum(num(c["value"]) for c in f["values"])
print(totals.get(0, 0), totals.get(1, 0))'
}

loss_runs() {  # loss_runs TAG: 64 B RPCs one at a time and 10 outstanding, on every stack
  for st in "${stacks[@]}"; do
    start_server "$st" 1 block
    client "$st" "loss/$1-c1" 0 --size 64 --count "$(n 5000)"
    client "$st" "loss/$1-c10" 0 --size 64 --concurrency 10 --count "$(n 20000)" --warmup 20
    stop_server
  done
}
if want 4; then
  echo "bench: 4. 64 B RPCs with 1 % of the transport's packets dropped on W"
  loss_runs 0pct
  loss_attach x 253 1  # SMT's packets; smtd's TCP control channels pass
  loss_attach k 6 1    # TCP's packets (TLS runs over them)
  loss_runs 1pct
  read -r seen dropped < <(loss_detach x)
  echo "loss_x_seen=$seen loss_x_dropped=$dropped" >"$out/loss.txt"
  read -r seen dropped < <(loss_detach k)
  echo "loss_k_seen=$seen loss_k_dropped=$dropped" >>"$out/loss.txt"
fi

if want 5; then
  echo "bench: 5. bulk: 1 MiB and 64 MiB requests (64 B replies, 2 outstanding)"
  for st in "${stacks[@]}"; do
    start_server "$st" 1 block
    client "$st" "bulk/1MiB" 0 --size 1048576 --reply-size 64 --concurrency 2 \
      --count "$(n 400 20)" --warmup 4
    client "$st" "bulk/64MiB" 0 --size 67108864 --reply-size 64 --concurrency 2 \
      --count "$(n 12 4)" --warmup 2
    stop_server
  done
  echo "bench: 5. AF_XDP copy mode's packet limit on a veth (tools/xdp-bench --xsk-only)"
  "$build/tools/xdp-bench/xdp-bench" --xsk-only --json --seconds 3 >"$out/xsk-limit.json" \
    2>"$work/xsk.err" || echo "xdp-bench --xsk-only failed: $(tail -2 "$work/xsk.err")" >>"$out/notes.txt"
fi

if want 1; then
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
fi

if want 6; then
  echo "bench: 6. seal/open against openssl speed (tools/microbench/run.sh)"
  SMT_BENCH_SECONDS=2 bash "$root/tools/microbench/run.sh" >"$out/crypto.md" 2>"$work/crypto.err" ||
    { echo "microbench failed: $(tail -3 "$work/crypto.err")" >>"$out/notes.txt"; }
fi
if want 7; then
  echo "bench: 7. session set-up: smtd against TLS 1.3 connect + handshake (tools/smtd-bench/run.sh)"
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
} >>"$out/machine.txt"

python3 "$root/tools/smt-bench/summarize.py" "$out"
ok=1
echo "bench: results in $out (results.md, results.json, *.png)"
