#!/usr/bin/env bash
# Echo over the AF_XDP datapath (smtd hands the trusted echo applications
# AF_XDP sockets while XDP is attached), IPv4: W's DATA count, no plaintext on
# the wire, every payload recovered with the key logs (selftests/echo.sh).
family=v4
ST_DATAPATH=xdp
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$st_root/selftests/echo.sh"
