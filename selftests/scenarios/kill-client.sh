#!/usr/bin/env bash
# kill -9 of the client mid-traffic, then a new client (docs/selftests.md):
# smt-decode --check-nonces over W's capture of both runs finds no nonce
# reuse, and the pre-crash packets replayed from W towards B deliver nothing
# (the server's answered count does not move; B's XDP drops them).
#
# Positive control: SMT_SELFTEST_EXPECT_NONCE_REUSE=1 with SMT_BUILD_DIR at a
# -DSMT_FAULT=REUSE_ID build inverts the nonce check (the scenario passes only
# when smt-decode finds the reuse) and stops there.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sizes=64,16384

fault="${SMT_SELFTEST_EXPECT_NONCE_REUSE:-0}"

st_setup v4
st_capture_start w
st_capture_start pre
st_server
if ((fault)); then
  # Ids restart whenever nothing is in flight: the server takes the repeats
  # for replays and the RPCs time out, but the reused nonces cross W.
  st_client client1 --sizes 64,1024 --count 3 --timeout-ms 300
  st_wait client1 || true
  st_capture_stop pre
else
  st_client client1 --sizes "$sizes" --count 100000
  for ((i = 0; i < 200; i++)); do
    (($(st_server_count) >= 300)) && break
    sleep 0.05
  done
  (($(st_server_count) >= 300)) || st_fail "first client did not get going ($(st_server_count) answered)"
  st_stop client1 KILL || true
  sleep 0.2
  st_ok "client killed (-9) mid-traffic after $(st_server_count) RPCs answered"
  st_capture_stop pre

  st_client client2 --sizes "$sizes" --count 200
  st_client_check client2
  st_ok "restarted client: $ST_RPCS RPCs, 0 failed, 0 mismatched"
fi
st_capture_stop w

rc=0
"$DECODE" --keylog "$(st_keys)" -r "$ST_WORK/w.pcap" --check-nonces --no-control \
  >"$ST_WORK/nonces.txt" 2>"$ST_WORK/nonces.log" || rc=$?
summary="$(grep 'authentic records checked' "$ST_WORK/nonces.log" || true)"
checked="$(sed -n 's/.* \([0-9]*\) authentic records checked.*/\1/p' <<<"$summary")"
reuses="$(sed -n 's/.* \([0-9]*\) nonce reuses.*/\1/p' <<<"$summary")"
if ((fault)); then
  ((rc == 1 && ${reuses:-0} > 0)) || st_fail "fault build: expected nonce reuses, got exit $rc, '$summary'"
  st_ok "fault build: smt-decode --check-nonces finds $reuses nonce reuses in $checked records"
  exit 0
fi
if ((rc != 0)) || [[ -z "$checked" ]] || ((checked == 0)); then
  grep -m5 nonce_reuse "$ST_WORK/nonces.txt" | sed 's/^/    /'
  sed 's/^/    /' "$ST_WORK/nonces.log"
  st_fail "smt-decode --check-nonces over both runs: exit $rc, ${reuses:-?} nonce reuses"
fi
st_ok "smt-decode --check-nonces: $checked authentic records of both runs, $reuses nonce reuses"

# Replay what A sent before the crash, from W towards B, as an attacker on
# the path could.
answered="$(st_server_count)"
# Delivered either way: to the stack (raw sockets) or to an AF_XDP socket.
delivered() { echo $(($(st_xdp_stat b pass_stack) + $(st_xdp_stat b redirect_xsk))); }
drops0="$(st_xdp_stat b drops)" pass0="$(delivered)"
st_in "$NS_B" "$SMTCTL" --pin-root "$ST_PINS/b" stats --json > "$ST_WORK/xdp-b-before.json"
replayed="$(st_in "$NS_W" python3 "$st_root/selftests/replay.py" "$ST_WORK/pre.pcap" wb --src "$ADDR_A" |
  sed -n 's/^replayed \([0-9]*\) frames$/\1/p')"
((replayed > 0)) || st_fail "nothing to replay in the pre-crash capture"
sleep 0.5
st_in "$NS_B" "$SMTCTL" --pin-root "$ST_PINS/b" stats --json > "$ST_WORK/xdp-b-after.json"
st_expect_eq "$(st_server_count)" "$answered" "server's answered count after replaying $replayed frames"
drops=$(($(st_xdp_stat b drops) - drops0)) passed=$(($(delivered) - pass0))
st_expect_eq "$drops/$passed" "$replayed/0" \
  "replayed frames dropped/passed by B's XDP"
