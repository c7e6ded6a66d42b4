#!/usr/bin/env bash
# kill-client on the AF_XDP datapath: no nonce reuse across a client crash,
# and a replay of the pre-crash packets delivers nothing.
ST_DATAPATH=xdp
source "$(dirname "${BASH_SOURCE[0]}")/kill-client.sh"
