#!/usr/bin/env bash
# kill -9 of smtd on A with RPCs in flight (docs/selftests.md): the client's
# RPCs all complete (its session lives in libsmt's engine and XDP's maps),
# the restarted smtd re-adopts it, and a new client session works afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sizes=64,65536
# Enough RPCs that client1 still runs when smtd is back and its libsmt has
# reconnected (within 100 ms of noticing); AF_XDP is quicker.
count=$([[ $ST_DATAPATH == xdp ]] && echo 3000 || echo 1500)

st_setup v4
st_server
st_client client1 --sizes "$sizes" --count "$count" --stats
for ((i = 0; i < 200; i++)); do
  (($(st_server_count) >= 100)) && break
  sleep 0.05
done
(($(st_server_count) >= 100)) || st_fail "client did not get going ($(st_server_count) answered)"
st_smtd_kill a
at_kill="$(st_server_count)"
((at_kill < 2 * count + 1)) || st_fail "client1 was done before smtd was killed"
st_ok "smtd on A killed (-9) with client1 running, $at_kill of $((2 * count + 1)) RPCs answered"
sleep 0.3
st_smtd_start a
kill -0 "${st_pids[client1]}" 2>/dev/null ||
  st_fail "client1 finished before smtd was back: nothing left to re-adopt (raise count)"
st_client_check client1
st_expect_eq "$ST_RPCS" "$((2 * count))" "client1: RPCs completed across the crash, 0 failed"
adopted="$(grep -c "re-adopted session serial" "$ST_WORK/smtd-a.log" || true)"
st_expect_eq "$adopted" 1 "sessions the restarted smtd re-adopted from client1"

st_client client2 --sizes 64,16384 --count 50
st_client_check client2
grep -q "^smt-echo: session with .*peer identity dns:hostb" "$ST_WORK/client2.log" ||
  st_fail "client2 reports no session with hostb"
st_ok "new client session after the restart: $ST_RPCS RPCs, 0 failed, 0 mismatched"
st_stop server || st_fail "server exited with an error"
st_expect_eq "$(st_server_count)" "$((2 * count + 1 + ST_RPCS + 1))" \
  "server answered each request of both clients once (+1 set-up RPC each)"
