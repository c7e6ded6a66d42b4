# shellcheck shell=bash
# Body of the loss-1 and loss-10 scenarios (docs/selftests.md): SMT packets
# dropped on W's ingress (both directions) with probability $pct percent,
# smt-echo over smtd on the raw-socket path. Checks: every RPC completes
# (0 failed, 0 mismatched), the server answered exactly as many requests as
# the client sent (exactly once), and the measured loss rate is within 50 %
# of the setting over at least $min_packets SMT packets. Expects $pct,
# $count and $min_packets, and lib.sh sourced.
sizes=64,1024,16384

st_setup v4
st_loss_attach "$pct"
st_server
st_client client --sizes "$sizes" --count "$count" --stats
st_client_check client
rpcs=$ST_RPCS
st_stop server || st_fail "server exited with an error"

st_expect_eq "$rpcs" "$((3 * count))" "client at ${pct} % loss: RPCs completed, 0 failed, 0 mismatched"
st_expect_eq "$(st_server_count)" "$((rpcs + 1))" \
  "server answered each request exactly once (+1 set-up RPC)"
read -r seen dropped < <(st_loss_stats)
((seen >= min_packets)) || st_fail "W saw only $seen SMT packets (need $min_packets)"
((dropped > 0)) || st_fail "W dropped nothing of $seen SMT packets"
rate="$(awk -v d="$dropped" -v s="$seen" 'BEGIN { printf "%.2f", 100 * d / s }')"
awk -v r="$rate" -v p="$pct" 'BEGIN { exit !(r >= 0.5 * p && r <= 1.5 * p) }' ||
  st_fail "measured loss $rate % ($dropped of $seen) is not within 50 % of $pct %"
st_ok "W dropped $dropped of $seen SMT packets: $rate % (setting $pct %)"
resent="$(($(st_stat client data_packets_resent) + $(st_stat server data_packets_resent)))"
((resent > 0)) || st_fail "no DATA packet was resent despite $dropped drops"
st_ok "DATA packets resent by client and server: $resent"
