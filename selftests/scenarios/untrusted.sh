#!/usr/bin/env bash
# An untrusted application (uid 65534, no capabilities, setpriv) works through
# smtd on the raw socket smtd hands it (smtd offers it no AF_XDP, and it says
# why), cannot switch that socket to IP_HDRINCL/IPV6_HDRINCL, and is refused
# another uid's port.
ST_DATAPATH=xdp # it asks for AF_XDP like any application; smtd decides
ST_APP_UID=65534
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[[ -x "$UNTRUSTED_HELPER" ]] || st_fail "not built: $UNTRUSTED_HELPER"

st_setup v4
# The unprivileged applications reach the smtd sockets in the work directory.
chmod a+x "$(dirname "$ST_WORK")" "$ST_WORK"
st_server
st_client client --sizes 64,1024,65536 --count 10
st_client_check client
st_ok "uid $ST_APP_UID: $ST_RPCS RPCs through smtd, 0 failed, 0 mismatched"
grep -q "AF_XDP unavailable (uid $ST_APP_UID is not trusted" "$ST_WORK/client.log" ||
  st_fail "the untrusted client did not say why it has no AF_XDP"
st_ok "smtd gave it a raw socket, not AF_XDP: $(grep -o 'AF_XDP unavailable.*' "$ST_WORK/client.log")"

drop="setpriv --reuid=$ST_APP_UID --regid=$ST_APP_UID --clear-groups --inh-caps=-all --bounding-set=-all"
# shellcheck disable=SC2086
out="$(st_in "$NS_A" $drop "$UNTRUSTED_HELPER" datapath "$ST_WORK/a.sock" 2>&1)" ||
  st_fail "smtd-untrusted-helper datapath: $out"
for want in hdrincl_errno=1 detach_errno=1 own_raw_errno=1; do
  grep -q "^$want$" <<<"$out" || {
    sed 's/^/    /' <<<"$out"
    st_fail "expected $want (EPERM)"
  }
done
st_ok "on its smtd socket: IP_HDRINCL EPERM, removing the port filter EPERM; own raw socket EPERM"
# Root's application on A holds port 6000; the untrusted uid may not take it.
st_bg rootapp "$NS_A" "$ECHO" server --port 6000 --smtd "$ST_WORK/a.sock"
st_wait_log rootapp "ready"
# shellcheck disable=SC2086
out="$(st_in "$NS_A" $drop "$UNTRUSTED_HELPER" lease "$ST_WORK/a.sock" 6000 2>&1 || true)"
grep -q "^lease_errno=13$" <<<"$out" || st_fail "leasing root's port 6000: $out"
st_ok "root's port 6000 refused to uid $ST_APP_UID (EACCES)"
st_stop rootapp || true
