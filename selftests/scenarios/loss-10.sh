#!/usr/bin/env bash
# 10 % of SMT packets dropped on W: every RPC completes exactly once
# (selftests/loss.sh).
pct=10 count=300 min_packets=2000
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$st_root/selftests/loss.sh"
