#!/usr/bin/env bash
# Runs SMT's namespace selftests (docs/selftests.md): each scenario in
# selftests/scenarios/*.sh (or the ones named) in its own A — W — B
# namespaces with its own pin roots and work directory, under a time limit.
#
#   selftests/run.sh [--junit FILE] [--timeout SECS] [scenario...]
#
# A scenario exits 0 (pass), 77 (skip, saying why) or anything else (fail).
# Prints PASS/FAIL/SKIP and seconds per scenario; a failed scenario's logs
# are kept (the line says where), everything else is removed, also on
# Ctrl-C. Ends with `N passed, N failed, N skipped`; --junit writes JUnit XML
# that tools/junit-summary.py counts. Exit status: 0 when nothing failed.
#
# Environment: SMT_BUILD_DIR (default <root>/build; the binaries and
# selftests/selftest_loss.bpf.o come from there), SMT_SELFTEST_NO_BUILD=1
# (do not build the targets first; tools/test.sh has built everything).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SMT_BUILD_DIR:-$root/build}"
junit=""
limit=120
names=()
while (($#)); do
  case "$1" in
    --junit) junit="$2" && shift 2 ;;
    --timeout) limit="$2" && shift 2 ;;
    -h | --help)
      sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "selftests: unknown option $1" >&2
      exit 2
      ;;
    *) names+=("${1%.sh}") && shift ;;
  esac
done
if ((${#names[@]} == 0)); then
  for f in "$root"/selftests/scenarios/*.sh; do names+=("$(basename "$f" .sh)"); done
fi
for n in "${names[@]}"; do
  [[ -f "$root/selftests/scenarios/$n.sh" ]] || {
    echo "selftests: no scenario $n (selftests/scenarios/$n.sh)" >&2
    exit 2
  }
done

if ((EUID == 0)) && [[ "${SMT_SELFTEST_NO_BUILD:-}" != 1 ]]; then
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S "$root" -B "$build" -DSMT_BUILD_BPF=ON >/dev/null || exit 1
  fi
  cmake --build "$build" -j2 --target smtd smtctl smt-echo smt-decode selftest_loss_object smtd-untrusted-helper \
    >/dev/null || {
    echo "selftests: build failed (cmake --build $build --target ...)" >&2
    exit 1
  }
fi

keep="$(mktemp -d /tmp/smt-selftests.XXXXXX)"
results="$keep/results.tsv" # name, status, seconds, message
: >"$results"
current_pid="" current_id=""

# Whatever a scenario left behind (it cleans up itself; this is for a
# scenario killed at its time limit): its process group, processes inside
# its namespaces, the namespaces, its pins.
sweep() {
  local id="$1" pid="$2" ns p
  [[ -n "$pid" ]] && kill -KILL -- "-$pid" 2>/dev/null
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^smtst-$id-"); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "/sys/fs/bpf/smtst-$id"
}

# stop_current: TERM to the scenario's process group (its trap cleans up as
# soon as its foreground command ends), KILL after 10 s.
stop_current() {
  [[ -n "$current_pid" ]] || return 0
  kill -TERM -- "-$current_pid" 2>/dev/null
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$current_pid" 2>/dev/null || break
    sleep 0.1
  done
  sweep "$current_id" "$current_pid"
  wait "$current_pid" 2>/dev/null
  current_pid=""
}

on_interrupt() {
  echo
  echo "selftests: interrupted; cleaning up" >&2
  stop_current
  rm -rf "$keep"
  exit 130
}
trap on_interrupt INT TERM

passed=0 failed=0 skipped=0
n=0
for name in "${names[@]}"; do
  n=$((n + 1))
  id="$$x$n" # unique among runs (pid) and scenarios (n)
  work="$keep/$name"
  mkdir -p "$work"
  start="$(date +%s.%N)"
  echo "--- $name"
  # setsid: its own process group, so a time limit can end all it started.
  SMT_ST_ROOT="$root" SMT_BUILD_DIR="$build" SMT_ST_ID="$id" SMT_ST_WORK="$work" \
    setsid bash "$root/selftests/scenarios/$name.sh" > >(tee "$work/scenario.log") 2>&1 &
  current_pid=$! current_id=$id
  timed_out=0
  while kill -0 "$current_pid" 2>/dev/null; do
    if awk -v a="$start" -v b="$(date +%s.%N)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      timed_out=1
      echo "  time limit of ${limit}s reached"
      stop_current
      break
    fi
    sleep 0.2
  done
  if [[ -n "$current_pid" ]]; then
    wait "$current_pid"
    rc=$?
    sweep "$id" ""
    current_pid=""
  else
    rc=124
  fi
  secs="$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
  sleep 0.05 # let tee finish the log
  if ((rc == 0 && !timed_out)); then
    status=pass msg=""
    passed=$((passed + 1))
    echo "PASS $name (${secs}s)"
    rm -rf "$work"
  elif ((rc == 77 && !timed_out)); then
    status=skip
    msg="$(sed -n 's/^SKIP: //p' "$work/scenario.log" | tail -1)"
    skipped=$((skipped + 1))
    echo "SKIP $name (${secs}s): ${msg:-no reason given}"
    rm -rf "$work"
  else
    status=fail
    msg="exit $rc$( ((timed_out)) && echo ", time limit ${limit}s"); logs in $work"
    failed=$((failed + 1))
    echo "FAIL $name (${secs}s): logs kept in $work"
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$secs" "${msg//$'\t'/ }" >>"$results"
done

if [[ -n "$junit" ]]; then
  mkdir -p "$(dirname "$junit")"
  python3 - "$results" "$junit" <<'EOF'
import sys
import xml.etree.ElementTree as ET

rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
suite = ET.Element("testsuite", name="selftests", tests=str(len(rows)),
                   failures=str(sum(r[1] == "fail" for r in rows)),
                   skipped=str(sum(r[1] == "skip" for r in rows)),
                   time=f"{sum(float(r[2]) for r in rows):.1f}")
for name, status, secs, msg in rows:
    # Status names as ctest writes them, which tools/junit-summary.py reads.
    case = ET.SubElement(suite, "testcase", name=f"selftests/{name}", classname="selftests",
                         time=secs, status="notrun" if status == "skip" else "run")
    if status == "fail":
        ET.SubElement(case, "failure", message=msg)
    elif status == "skip":
        ET.SubElement(case, "skipped", message=f"SKIP_RETURN_CODE=77: {msg}")
ET.ElementTree(suite).write(sys.argv[2], encoding="utf-8", xml_declaration=True)
EOF
fi

rmdir "$keep" 2>/dev/null || rm -f "$results"
rmdir "$keep" 2>/dev/null || true
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
