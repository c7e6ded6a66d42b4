#!/usr/bin/env bash
# Echo over the raw-socket datapath, IPv4: W's DATA count, no plaintext on the
# wire, every payload recovered with the key logs (selftests/echo.sh).
family=v4
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$st_root/selftests/echo.sh"
