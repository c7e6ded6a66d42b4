#!/usr/bin/env bash
# 10 % of SMT packets dropped on W while the applications run on AF_XDP:
# every RPC completes exactly once (selftests/loss.sh).
pct=10 count=300 min_packets=2000
ST_DATAPATH=xdp
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$st_root/selftests/loss.sh"
