#!/usr/bin/env bash
# kill-smtd on the AF_XDP datapath: RPCs in flight survive kill -9 of smtd
# (the AF_XDP socket stays in xdp's map), the holder re-presents its sockets
# and re-adopts its session, and a new session works afterwards.
ST_DATAPATH=xdp
source "$(dirname "${BASH_SOURCE[0]}")/kill-smtd.sh"
for c in client1 client2; do
  ! grep -q "AF_XDP unavailable" "$ST_WORK/$c.log" || st_fail "$c did not get AF_XDP"
done
grep -q "presented its .* datapath sockets again and its AF_XDP socket on queue 0" "$ST_WORK/smtd-a.log" ||
  st_fail "client1 did not present its AF_XDP and raw sockets to the restarted smtd"
st_ok "client1 presented its AF_XDP socket to the restarted smtd; both clients ran on AF_XDP"
((redirected = $(st_xdp_stat a redirect_xsk), redirected > 0)) || st_fail "A's XDP redirected nothing"
st_expect_eq "$(st_xdp_stat a pass_stack)" 0 "XDP on A: pass_stack (everything went to AF_XDP)"
