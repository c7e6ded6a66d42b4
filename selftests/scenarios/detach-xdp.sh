#!/usr/bin/env bash
# Detaching XDP mid-run makes AF_XDP traffic fail: nothing redirects the
# packets to the application's socket any more (they go to the stack, where
# the AF_XDP application does not read). This is how the traffic scenarios
# can tell AF_XDP really carried them, and it shows they can fail.
ST_DATAPATH=xdp
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

st_setup v4
st_server
st_client before --sizes 64,16384 --count 20
st_client_check before
st_ok "with XDP attached: $ST_RPCS RPCs over AF_XDP"
redirected="$(st_xdp_stat b redirect_xsk)"
((redirected > 0)) || st_fail "B's XDP redirected nothing to AF_XDP"

st_client during --sizes 1024 --count 1000000 --timeout-ms 200
st_wait_log during "session with" 5
sleep 0.5
st_detach b
st_ok "XDP detached from B mid-run"
# The client now fails RPC after RPC; three failures are enough.
for ((i = 0; i < 100; i++)); do
  (($(grep -c "failed:" "$ST_WORK/during.log" || true) >= 3)) && break
  sleep 0.1
done
failed="$(grep -c "failed:" "$ST_WORK/during.log" || true)"
st_stop during || true
((failed >= 3)) || {
  sed 's/^/    /' "$ST_WORK/during.log" | tail -10
  st_fail "RPCs kept succeeding with XDP detached: AF_XDP was not carrying them"
}
st_ok "with XDP detached, the AF_XDP client's RPCs fail ($failed failures seen)"
