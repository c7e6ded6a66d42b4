# shellcheck shell=bash
# Shared library of the selftests (docs/selftests.md); scenarios source it.
#
#     A (a0) ——— (wa) W (wb) ——— (b0) B
#   10.99.1.1    .1.254  .2.254    10.99.2.1
#   fd99:1::1    fd99:1::fe  fd99:2::fe  fd99:2::1
#
# Every scenario gets its own three namespaces (names carry SMT_ST_ID), its
# own bpffs pin roots (/sys/fs/bpf/smtst-<id>/{a,b,loss}) and its own work
# directory (SMT_ST_WORK: configs, certificates, logs, captures). W routes
# IPv4 and IPv6; captures and loss injection happen on W only (PLATFORM.md:
# AF_XDP transmit bypasses taps on the sender, native XDP takes frames
# before the receiver's taps).
#
# A scenario: `source lib.sh`, `st_setup v4|v6`, run traffic, `st_ok` one
# line per check, `st_fail` (exit 1) or `st_skip` (exit 77). Cleanup of
# processes, namespaces and pins runs on exit, on failure and on signals;
# the runner (run.sh) keeps or removes the work directory.
set -euo pipefail

st_root="${SMT_ST_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
st_build="${SMT_BUILD_DIR:-$st_root/build}"
st_id="${SMT_ST_ID:-x$$}"
ST_WORK="${SMT_ST_WORK:-}"
if [[ -z "$ST_WORK" ]]; then
  ST_WORK="$(mktemp -d /tmp/smt-selftest.XXXXXX)"
  echo "work directory: $ST_WORK"
fi

SMTD="$st_build/user/smtd"
SMTCTL="$st_build/tools/smtctl/smtctl"
ECHO="$st_build/tools/smt-echo/smt-echo"
DECODE="$st_build/tools/smt-decode/smt-decode"
LOSS_OBJ="$st_build/selftests/selftest_loss.bpf.o"
UNTRUSTED_HELPER="$st_build/tests/smtd/smtd-untrusted-helper"
STEER_OBJ="$st_build/selftests/selftest_steer.bpf.o"

NS_A="smtst-$st_id-a" NS_W="smtst-$st_id-w" NS_B="smtst-$st_id-b"
ST_PINS="/sys/fs/bpf/smtst-$st_id"
A4=10.99.1.1 B4=10.99.2.1 A6=fd99:1::1 B6=fd99:2::1
ADDR_A="" ADDR_B="" # this scenario's SMT addresses (st_setup picks the family)
SMT_PORT=5000       # the echo server's port on B

declare -A st_pids=() # name -> pid of a background process
st_attached=()        # hosts with XDP attached

# --- results ---------------------------------------------------------------

st_ok() { echo "  ok: $*"; }
st_fail() {
  echo "  FAIL: $*"
  exit 1
}
st_skip() {
  echo "SKIP: $*"
  exit 77
}
# st_expect_eq ACTUAL EXPECTED WHAT: ok line or failure naming both values.
st_expect_eq() {
  if [[ "$1" == "$2" ]]; then st_ok "$3: $1"; else st_fail "$3: got $1, expected $2"; fi
}

# --- processes -------------------------------------------------------------

# st_in NS CMD...: runs CMD in namespace NS (nsenter keeps /sys/fs/bpf, which
# `ip netns exec` hides).
st_in() {
  local ns="$1"
  shift
  nsenter --net="/run/netns/$ns" -- "$@"
}

# st_bg NAME NS CMD...: CMD in NS in the background, output in $ST_WORK/NAME.log;
# nsenter execs CMD, so st_pids[NAME] is CMD's own pid.
st_bg() {
  local name="$1" ns="$2"
  shift 2
  nsenter --net="/run/netns/$ns" -- "$@" >"$ST_WORK/$name.log" 2>&1 &
  st_pids[$name]=$!
}

# st_wait_log NAME PATTERN [SECONDS]: waits until NAME's log matches; fails if
# the process died or the time ran out.
st_wait_log() {
  local name="$1" pattern="$2" secs="${3:-5}" i
  for ((i = 0; i < secs * 20; i++)); do
    grep -q -- "$pattern" "$ST_WORK/$name.log" 2>/dev/null && return 0
    kill -0 "${st_pids[$name]}" 2>/dev/null || break
    sleep 0.05
  done
  sed 's/^/    /' "$ST_WORK/$name.log" | tail -20
  st_fail "$name: no '$pattern' in its log"
}

# st_stop NAME [SIGNAL]: signals NAME (default TERM) and reaps it; returns its
# exit status.
st_stop() {
  local name="$1" sig="${2:-TERM}" pid="${st_pids[$1]:-}" rc=0
  [[ -n "$pid" ]] || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || rc=$?
  unset "st_pids[$name]"
  return "$rc"
}

# st_wait NAME: waits for NAME to exit by itself; returns its exit status.
st_wait() {
  local name="$1" pid="${st_pids[$1]}" rc=0
  wait "$pid" || rc=$?
  unset "st_pids[$name]"
  return "$rc"
}

st_cleanup() {
  local rc=$? name h
  trap - EXIT INT TERM
  for name in "${!st_pids[@]}"; do kill "${st_pids[$name]}" 2>/dev/null || true; done
  for name in "${!st_pids[@]}"; do wait "${st_pids[$name]}" 2>/dev/null || true; done
  for h in "${st_attached[@]}"; do
    st_in "$(st_ns "$h")" "$SMTCTL" --pin-root "$ST_PINS/$h" detach "${h}0" >/dev/null 2>&1 || true
  done
  for name in "$NS_A" "$NS_W" "$NS_B"; do ip netns del "$name" 2>/dev/null || true; done
  rm -rf "$ST_PINS"
  exit "$rc"
}
trap st_cleanup EXIT
trap 'echo "  interrupted"; exit 130' INT
trap 'echo "  terminated"; exit 143' TERM

# --- topology, certificates, smtd -----------------------------------------

st_ns() {
  case "$1" in
    a) echo "$NS_A" ;;
    b) echo "$NS_B" ;;
    w) echo "$NS_W" ;;
    *) st_fail "unknown host $1" ;;
  esac
}

st_require() {
  ((EUID == 0)) || st_skip "needs root (namespaces, XDP, tc)"
  [[ "$ST_DATAPATH" == raw || "$ST_DATAPATH" == xdp ]] || st_fail "unknown datapath '$ST_DATAPATH'"
  local f
  for f in "$SMTD" "$SMTCTL" "$ECHO" "$DECODE" "$LOSS_OBJ"; do
    [[ -x "$f" || ($f == "$LOSS_OBJ" && -f "$f") ]] || st_fail "not built: $f"
  done
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf ||
    st_fail "cannot mount bpffs at /sys/fs/bpf"
}

# st_topology: A — W — B with IPv4 and IPv6 on every link, W forwarding both.
st_topology() {
  local ns
  for ns in "$NS_A" "$NS_W" "$NS_B"; do ip netns add "$ns"; done
  # ST_QUEUES rx/tx queues per veth end: a packet keeps its queue number
  # through W's forwarding, so each AF_XDP application pair can have its own.
  local q="numtxqueues $ST_QUEUES numrxqueues $ST_QUEUES"
  # shellcheck disable=SC2086
  ip link add a0 netns "$NS_A" $q type veth peer name wa netns "$NS_W" $q
  # shellcheck disable=SC2086
  ip link add b0 netns "$NS_B" $q type veth peer name wb netns "$NS_W" $q
  ip -n "$NS_A" addr add "$A4/24" dev a0
  ip -n "$NS_A" addr add "$A6/64" dev a0 nodad
  ip -n "$NS_W" addr add 10.99.1.254/24 dev wa
  ip -n "$NS_W" addr add fd99:1::fe/64 dev wa nodad
  ip -n "$NS_W" addr add 10.99.2.254/24 dev wb
  ip -n "$NS_W" addr add fd99:2::fe/64 dev wb nodad
  ip -n "$NS_B" addr add "$B4/24" dev b0
  ip -n "$NS_B" addr add "$B6/64" dev b0 nodad
  local pair
  for pair in "$NS_A a0" "$NS_W wa" "$NS_W wb" "$NS_B b0"; do
    set -- $pair
    ip -n "$1" link set lo up
    ip -n "$1" link set "$2" up
  done
  ip -n "$NS_A" route add default via 10.99.1.254
  ip -n "$NS_A" -6 route add default via fd99:1::fe
  ip -n "$NS_B" route add default via 10.99.2.254
  ip -n "$NS_B" -6 route add default via fd99:2::fe
  st_in "$NS_W" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  if ((ST_QUEUES > 1)); then
    # W sends each SMT packet on queue (destination port % queues), which on
    # veth is the queue it arrives on: the stand-in for a NIC's flow steering.
    local dir="$ST_PINS/steer"
    mkdir -p "$dir"
    bpftool prog load "$STEER_OBJ" "$dir/prog" type classifier || st_fail "cannot load $STEER_OBJ"
    for dev in wa wb; do
      st_in "$NS_W" tc qdisc add dev "$dev" clsact
      st_in "$NS_W" tc filter add dev "$dev" egress bpf direct-action object-pinned "$dir/prog" ||
        st_fail "cannot attach the steering program to W's $dev"
    done
  fi
}

# st_smtd_conf HOST: writes $ST_WORK/HOST.conf for this scenario's family.
st_smtd_conf() {
  local h="$1" me peer host other
  if [[ $h == a ]]; then me=$ADDR_A peer=$ADDR_B host=hosta other=hostb; else
    me=$ADDR_B peer=$ADDR_A host=hostb other=hosta; fi
  local me_ep="$me:7853" peer_ep="$peer:7853"
  [[ $me == *:* ]] && me_ep="[$me]:7853" peer_ep="[$peer]:7853"
  cat >"$ST_WORK/$h.conf" <<EOF
[local]
address = $me
listen = $me_ep
certificate = $ST_WORK/certs/$host.crt
key = $ST_WORK/certs/$host.key
ca = $ST_WORK/certs/ca.crt

[peer $other]
address = $peer
control = $peer_ep
identity = dns:$other

[uid 0]
ports = any
ephemeral = yes
trusted = yes
EOF
  if [[ -n "$ST_APP_UID" ]]; then
    printf '\n[uid %s]\nports = %s\nephemeral = yes\ntrusted = no\n' "$ST_APP_UID" "$SMT_PORT" \
      >>"$ST_WORK/$h.conf"
  fi
}

# st_attach HOST / st_detach HOST: SMT's XDP program on the host's veth.
st_attach() {
  st_in "$(st_ns "$1")" "$SMTCTL" --pin-root "$ST_PINS/$1" attach "${1}0" >/dev/null
  st_attached+=("$1")
}
st_detach() { st_in "$(st_ns "$1")" "$SMTCTL" --pin-root "$ST_PINS/$1" detach "${1}0" >/dev/null; }

# st_smtd_start HOST: smtd on HOST with its pin root, socket $ST_WORK/HOST.sock
# and key log $ST_WORK/HOST.keylog (debug only: the decoder checks need it);
# waits until the socket serves.
st_smtd_start() {
  local h="$1" i
  # A restart keeps the earlier log (smtd-HOST.log.1, .2, ...).
  for ((i = 1; ; i++)); do [[ -e "$ST_WORK/smtd-$h.log.$i" ]] || break; done
  [[ -e "$ST_WORK/smtd-$h.log" ]] && mv "$ST_WORK/smtd-$h.log" "$ST_WORK/smtd-$h.log.$i"
  st_bg "smtd-$h" "$(st_ns "$h")" "$SMTD" --foreground --config "$ST_WORK/$h.conf" \
    --state-dir "$ST_PINS/$h" --socket "$ST_WORK/$h.sock" --keylog "$ST_WORK/$h.keylog"
  for ((i = 0; i < 100; i++)); do
    # The socket file of a killed smtd may still be there: wait for the log too.
    [[ -S "$ST_WORK/$h.sock" ]] && grep -q "ready:" "$ST_WORK/smtd-$h.log" 2>/dev/null && return 0
    kill -0 "${st_pids[smtd-$h]}" 2>/dev/null || break
    sleep 0.05
  done
  sed 's/^/    /' "$ST_WORK/smtd-$h.log" | tail -20
  st_fail "smtd on $h did not start"
}
# st_smtd_kill HOST: kill -9, as a crash.
st_smtd_kill() { st_stop "smtd-$1" KILL || true; }

# st_setup v4|v6: root check, topology, certificates, XDP and smtd on A and B.
st_setup() {
  st_require
  case "$1" in
    v4) ADDR_A=$A4 ADDR_B=$B4 ;;
    v6) ADDR_A=$A6 ADDR_B=$B6 ;;
    *) st_fail "st_setup: family v4 or v6, not '$1'" ;;
  esac
  mkdir -p "$ST_PINS"
  st_topology
  bash "$st_root/tools/smt-certs" "$ST_WORK/certs" hosta hostb >/dev/null
  local h
  for h in a b; do
    st_smtd_conf "$h"
    st_attach "$h"
    st_smtd_start "$h"
  done
}

# --- traffic ---------------------------------------------------------------

# ST_DATAPATH picks the applications' datapath: `raw` (smtd's raw sockets)
# or `xdp` (AF_XDP sockets smtd hands trusted uids while XDP is attached).
# ST_APP_UID runs the echo applications under that uid (setpriv) and gives
# the uid its own [uid N] section in both smtd configs (port SMT_PORT and
# ephemeral, not trusted), for the untrusted-application scenario.
# ST_QUEUES: queues per veth end (several AF_XDP applications per host).
ST_DATAPATH="${ST_DATAPATH:-raw}"
ST_APP_UID="${ST_APP_UID:-}"
ST_QUEUES="${ST_QUEUES:-1}"
st_datapath_args() { echo "--datapath $([[ $ST_DATAPATH == xdp ]] && echo auto || echo raw)"; }
st_app_prefix() {
  [[ -z "$ST_APP_UID" ]] || echo "setpriv --reuid=$ST_APP_UID --regid=$ST_APP_UID --clear-groups"
}

# st_server [EXTRA...]: smt-echo server on B (port SMT_PORT) through smtd,
# answered count in $ST_WORK/server.count.
st_server() {
  # shellcheck disable=SC2046
  st_bg server "$NS_B" $(st_app_prefix) "$ECHO" server $(st_datapath_args) --port "$SMT_PORT" --smtd "$ST_WORK/b.sock" \
    --count-file "$ST_WORK/server.count" "$@"
  st_wait_log server "ready"
}
st_server_count() { cat "$ST_WORK/server.count" 2>/dev/null || echo 0; }

# st_client NAME [ARGS...]: smt-echo client on A against B's server, in the
# background, output in $ST_WORK/NAME.log (wait with st_wait NAME).
st_client() {
  local name="$1"
  shift
  # shellcheck disable=SC2046
  st_bg "$name" "$NS_A" $(st_app_prefix) "$ECHO" client $(st_datapath_args) --peer "$ADDR_B" --port "$SMT_PORT" \
    --smtd "$ST_WORK/a.sock" "$@"
}

# st_client_check NAME: NAME exited 0 with "N rpcs, 0 failed, 0 mismatched";
# sets ST_RPCS=N. (Not for $(...): it waits for a child and may fail the
# scenario, neither of which works in a subshell.)
st_client_check() {
  local name="$1" rc=0 line
  st_wait "$name" || rc=$?
  line="$(grep -o '[0-9]* rpcs, [0-9]* failed, [0-9]* mismatched' "$ST_WORK/$name.log" || true)"
  if ((rc != 0)) || [[ ! $line =~ ^([0-9]+)\ rpcs,\ 0\ failed,\ 0\ mismatched$ ]]; then
    sed 's/^/    /' "$ST_WORK/$name.log" | tail -20 >&2
    st_fail "$name: exit $rc, '${line:-no summary}'"
  fi
  ST_RPCS="${BASH_REMATCH[1]}"
}

# st_stat NAME FIELD: a counter from NAME's `stats <who>:` line (smt-echo --stats).
st_stat() {
  sed -n "s/.*stats [a-z]*:.* $2=\([0-9]*\).*/\1/p" "$ST_WORK/$1.log" | tail -1
}

# --- XDP counters ------------------------------------------------------------

# st_xdp_stat HOST COUNTER|drops: an XDP counter of HOST summed over its
# interfaces (smtctl stats); `drops` sums every drop_* counter.
st_xdp_stat() {
  st_in "$(st_ns "$1")" "$SMTCTL" --pin-root "$ST_PINS/$1" stats --json |
    python3 -c '
import json, sys
want = sys.argv[1]
total = 0
for i in json.load(sys.stdin)["interfaces"]:
    for k, v in i["counters"].items():
        if k == want or (want == "drops" and k.startswith("drop_")):
            total += int(v)
print(total)' "$2"
}

# --- capture on W --------------------------------------------------------------

# st_capture_start NAME [IFACE]: tcpdump on W (default wb, which sees both
# directions) of SMT packets into $ST_WORK/NAME.pcap (classic pcap).
st_capture_start() {
  local name="$1" dev="${2:-wb}"
  # -Z root: tcpdump would drop to its own user, which cannot write here.
  # A 64 MiB ring of 2 KiB slots (SMT packets fit the 1500-byte MTU): messages
  # arrive in bursts faster than it writes, and with -s 0 the immediate-mode
  # ring's slots would be 256 KiB, only 256 packets deep.
  st_bg "$name" "$NS_W" tcpdump -Z root -i "$dev" -U --immediate-mode -B 65536 -s 2048 -w "$ST_WORK/$name.pcap" \
    'ip proto 253 or ip6 proto 253'
  st_wait_log "$name" "listening"
}
st_capture_stop() {
  # tcpdump does not drain its buffer on SIGTERM: ask for its counters
  # (SIGUSR1: "tcpdump: N packets captured, N packets received by filter, N
  # packets dropped by kernel") until it has written every packet it took.
  local name="$1" line="" got="" seen="" dropped="" i
  for ((i = 0; i < 100; i++)); do
    kill -USR1 "${st_pids[$name]}"
    sleep 0.1
    line="$(grep 'packets captured, ' "$ST_WORK/$name.log" | tail -1)"
    read -r got seen dropped < <(echo "$line" | tr -dc '0-9 \n' | awk '{print $1, $2, $3}')
    [[ -n "$got" && "$got" == "$seen" ]] && break
    [[ -n "$dropped" && "$dropped" != 0 ]] && break
  done
  st_stop "$name" || true
  [[ -n "$got" && "$got" == "$seen" && "$dropped" == 0 ]] ||
    st_fail "capture $name incomplete: ${line:-tcpdump reported nothing}"
  [[ -s "$ST_WORK/$name.pcap" ]] || st_fail "capture $name is empty"
}

# st_keys: both hosts' key logs in one file; prints its path.
st_keys() {
  cat "$ST_WORK/a.keylog" "$ST_WORK/b.keylog" >"$ST_WORK/keys"
  echo "$ST_WORK/keys"
}

# --- loss injection on W -------------------------------------------------------

# st_loss_attach PERCENT: loads selftests/loss.bpf.c once (pinned in
# $ST_PINS/loss) and attaches it to the tc ingress of wa and wb, dropping SMT
# packets with probability PERCENT/100.
st_loss_attach() {
  local pct="$1" dir="$ST_PINS/loss" dev
  mkdir -p "$dir"
  bpftool prog load "$LOSS_OBJ" "$dir/prog" type classifier pinmaps "$dir"
  # threshold = PERCENT/100 * 2^32, little-endian bytes for bpftool
  local bytes
  bytes="$(python3 -c '
import sys
t = min(int(float(sys.argv[1]) / 100 * 2**32), 2**32 - 1)
print(" ".join(str(b) for b in t.to_bytes(4, "little")))' "$pct")"
  # shellcheck disable=SC2086
  bpftool map update pinned "$dir/cfg_array" key 0 0 0 0 value $bytes
  bpftool map update pinned "$dir/cfg_array" key 1 0 0 0 value 253 0 0 0  # SMT packets only
  for dev in wa wb; do
    st_in "$NS_W" tc qdisc add dev "$dev" clsact
    st_in "$NS_W" tc filter add dev "$dev" ingress bpf direct-action object-pinned "$dir/prog"
  done
}

# st_loss_stats: "SEEN DROPPED", SMT packets the loss program saw and dropped.
st_loss_stats() {
  bpftool -j map dump pinned "$ST_PINS/loss/stats_percpu" | python3 -c '
import json, sys
def num(v):
    if isinstance(v, int):
        return v
    return int.from_bytes(bytes(int(b, 16) for b in v), "little")
totals = {}
for e in json.load(sys.stdin):
    f = e.get("formatted", e)
    key = f["key"] if isinstance(f["key"], int) else num(f["key"])
    totals[key] = sum(num(c["value"]) for c in f["values"])
print(totals.get(0, 0), totals.get(1, 0))'
}
