#!/usr/bin/env bash
# Two AF_XDP client processes on host A, each with many concurrent RPCs,
# talking to their own server process on B (v1 scope: several AF_XDP
# applications per host, each with single-application peers). Every veth end
# has two queues; application pair N uses queue N on both hosts and ports
# with port % 2 = N, which W's steering program (lib.sh, ST_QUEUES) maps to
# queue N, so XDP on each host redirects every packet to the right socket.
ST_DATAPATH=xdp
ST_QUEUES=2
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

st_setup v4
for q in 0 1; do
  st_bg "server$q" "$NS_B" "$ECHO" server --datapath auto --xdp-queue "$q" \
    --port "$((SMT_PORT + q))" --smtd "$ST_WORK/b.sock" --count-file "$ST_WORK/server$q.count"
done
for q in 0 1; do st_wait_log "server$q" "ready"; done
for q in 0 1; do
  st_bg "client$q" "$NS_A" "$ECHO" client --datapath auto --xdp-queue "$q" --peer "$ADDR_B" \
    --port "$((SMT_PORT + q))" --local-port "$((40000 + q))" --smtd "$ST_WORK/a.sock" --sizes 64,4096,65536 --count 200 \
    --concurrency 32 --stats
done
sent=0
for q in 0 1; do
  st_client_check "client$q"
  st_expect_eq "$ST_RPCS" 600 "client $q: RPCs echoed with 32 outstanding, 0 failed, 0 mismatched"
done
for q in 0 1; do st_stop "server$q" || st_fail "server $q exited with an error"; done
for q in 0 1; do
  st_expect_eq "$(cat "$ST_WORK/server$q.count")" 601 "server $q answered each request once (+1)"
  ! grep -q "AF_XDP unavailable" "$ST_WORK/client$q.log" "$ST_WORK/server$q.log" ||
    st_fail "pair $q did not get AF_XDP"
  sent=$((sent + $(st_stat "client$q" link_tx_packets)))
done
for h in a b; do
  for q in 0 1; do
    grep -q "an AF_XDP socket on ${h}0 queue $q" "$ST_WORK/smtd-$h.log" ||
      st_fail "smtd on ${h^^} handed out no AF_XDP socket on queue $q"
  done
done
st_ok "smtd on A and on B handed out AF_XDP sockets on queues 0 and 1"
# 64 outstanding RPCs overrun W's queues now and then (the engines resend),
# so not every packet sent arrives; every one that arrives is redirected.
redirected="$(st_xdp_stat b redirect_xsk)"
((redirected <= sent && redirected * 100 >= sent * 99)) ||
  st_fail "XDP on B redirected $redirected of the $sent packets both clients sent"
st_ok "XDP on B redirected $redirected of the $sent packets both clients sent (the rest lost on W)"
st_expect_eq "$(st_xdp_stat b pass_stack)" 0 "XDP on B: pass_stack"
st_expect_eq "$(st_xdp_stat b drop_wrong_queue)" 0 "XDP on B: drop_wrong_queue"
st_expect_eq "$(st_xdp_stat a drop_wrong_queue)" 0 "XDP on A: drop_wrong_queue"
