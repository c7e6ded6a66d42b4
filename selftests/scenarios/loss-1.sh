#!/usr/bin/env bash
# 1 % of SMT packets dropped on W: every RPC completes exactly once
# (selftests/loss.sh).
pct=1 count=600 min_packets=8000
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$st_root/selftests/loss.sh"
