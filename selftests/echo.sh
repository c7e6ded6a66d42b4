# shellcheck shell=bash
# Body of the echo-{raw,xdp}-{v4,v6} scenarios (docs/selftests.md): smt-echo
# over smtd on the raw-socket or the AF_XDP datapath, 64 B .. 256 KiB, captured
# on W. Checks: every RPC echoed; the server answered each request once; W
# carried exactly the DATA packets the two senders counted; no 16-byte
# window of any payload is in the capture; smt-decode with the key logs
# recovers every payload; XDP handed every SMT packet to the stack (raw) or
# to the application's AF_XDP socket (xdp) and nothing the other way.
# Expects $family (v4|v6), ST_DATAPATH and lib.sh sourced.
sizes=64,1024,16384,65536,262144
count=8

st_setup "$family"
st_capture_start w
st_server
st_client client --sizes "$sizes" --count "$count" --stats
st_client_check client
rpcs=$ST_RPCS
st_stop server || st_fail "server exited with an error"
st_capture_stop w

st_expect_eq "$rpcs" "$((5 * count))" "client ($family): RPCs echoed, 0 failed, 0 mismatched"
st_expect_eq "$(st_server_count)" "$((rpcs + 1))" "server answered each request once (+1 set-up RPC)"

"$DECODE" --keylog "$(st_keys)" -r "$ST_WORK/w.pcap" --json --max-bytes 0 --leak-check \
  >"$ST_WORK/decoded.jsonl" 2>"$ST_WORK/decode.log" || {
  sed 's/^/    /' "$ST_WORK/decode.log"
  st_fail "smt-decode --leak-check found a problem"
}
w_data="$(sed -n 's/.* SMT packets (\([0-9]*\) DATA.*/\1/p' "$ST_WORK/decode.log")"
c_data="$(st_stat client link_tx_data_packets)"
s_data="$(st_stat server link_tx_data_packets)"
((c_data > 0 && s_data > 0)) || st_fail "senders counted no DATA (client $c_data, server $s_data)"
st_expect_eq "$w_data" "$((c_data + s_data))" \
  "DATA packets on W = client's $c_data + server's $s_data link_tx_data_packets"
windows="$(sed -n 's/.*leak check: \([0-9]*\) plaintext windows.*: \([0-9]*\) found$/\1 \2/p' \
  "$ST_WORK/decode.log")"
read -r searched found <<<"$windows"
((searched > 0)) || st_fail "leak check searched no plaintext windows"
st_expect_eq "$found" 0 "16-byte plaintext windows found in W's capture ($searched searched)"
python3 "$st_root/selftests/echo_payloads.py" "$ST_WORK/decoded.jsonl" --sizes "$sizes" \
  --count "$count" >"$ST_WORK/payloads.log" 2>&1 || {
  sed 's/^/    /' "$ST_WORK/payloads.log"
  st_fail "smt-decode did not recover every payload"
}
st_ok "smt-decode recovers every payload: $(cat "$ST_WORK/payloads.log")"
if [[ $ST_DATAPATH == xdp ]]; then
  used=redirect_xsk unused=pass_stack where="redirected to the AF_XDP socket"
  for who in client server; do
    ! grep -q "AF_XDP unavailable" "$ST_WORK/$who.log" ||
      st_fail "the $who did not get AF_XDP: $(grep "AF_XDP unavailable" "$ST_WORK/$who.log")"
  done
else
  used=pass_stack unused=redirect_xsk where="passed to the raw socket"
fi
for pair in "b client" "a server"; do
  read -r h sender <<<"$pair"
  st_expect_eq "$(st_xdp_stat "$h" "$used")" "$(st_stat "$sender" link_tx_packets)" \
    "XDP on ${h^^} $where every SMT packet the $sender sent"
  st_expect_eq "$(st_xdp_stat "$h" "$unused")" 0 "XDP on ${h^^}: $unused"
done
