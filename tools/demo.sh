#!/usr/bin/env bash
# SMT's demo. For now: the record layer at a glance (tools/record-demo) —
# messages sealed into DATA packets on both layouts, duplicated, shuffled,
# tampered with and delivered through the receiver. A later milestone turns
# this into the two-host encrypted RPC demo.
#
#   bash tools/demo.sh        # as root on Debian 12, from any directory
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"

bash "$root/tools/install-deps.sh"
cmake -S "$root" -B "$build" -DSMT_FAULT= >/dev/null
cmake --build "$build" --target smt-record-demo -j"$(nproc)" >/dev/null
exec "$build/tools/record-demo/smt-record-demo"
