#!/usr/bin/env bash
# Mutation gate: proves the security tests can fail. For each deliberate fault
# in the table below (user/common/fault.h), the code is built with that fault
# (-DSMT_FAULT=<name>) and at least one of the fault's named tests must FAIL;
# a fault no named test notices "survived" and fails the gate. The same named
# tests must PASS in a build without any fault, so the gate cannot pass on a
# test that is simply broken.
#
#   bash tools/mutation-gate.sh             # every fault, from any directory
#   bash tools/mutation-gate.sh NO_AEAD_CHECK   # only the faults named
#
# Builds only the record library and each fault's test binary, in
# build-fault-<name>/ (and build-fault-none/ for the fault-free baseline).
# Ends with "N passed, N failed, 0 skipped", one check per fault and per
# baseline test binary.
set -euo pipefail

# fault name | test binary target | named tests (comma-separated)
# To add a fault: guard the broken code with SMT_FAULT_<NAME> (and list it in
# user/common/fault.h), then add a row naming the tests that pin the rule.
faults=(
  "NO_LENGTH_BIND|record_test|MessageTest.RewrittenLengthIsRejected"
  "NO_AEAD_CHECK|record_test|RecordCipher.CiphertextBitFlipIsRejected,MessageTest.CiphertextFlipUnderValidHeaderTagIsRejectedAsAuthFailure"
  "NO_CTL_MAC|wire_test|ControlPacket.FlipsThatParseAreCaughtByTheTag,ControlPacket.DataHeaderTagNeverVerifiesAsAControlTag"
  "NO_CTL_REPLAY|transport_test|ControlWindow.AcceptsEachNumberOnce,ControlWindow.OutOfOrderWithinTheWindow"
  "NO_REPLAY_WINDOW|transport_test|RequestWindow.MarkAcceptsOnlyFreshIds,RequestWindow.AMillionIdsWrapTheRingManyTimes"
  "NO_REPLAY_WINDOW|engine_test|EngineReplay.ReplayedRequestIsDroppedBeforeDecryptAndNeverDeliveredTwice"
  "NO_CTL_MAC|engine_test|EngineControl.ForgedAndReplayedControlPacketsOfEveryTypeChangeNothing"
  "NO_CTL_REPLAY|engine_test|EngineControl.ForgedAndReplayedControlPacketsOfEveryTypeChangeNothing"
  "REUSE_ID|engine_test|EngineIds.RequestIdsAreDenseEvenAndNeverReused"
  "REUSE_ID|decode_unit_test|DecodeCapture.CheckNoncesFindsNoReuseInOneAtATimeRpcsOfARealEngine"
)
libs=(smt_record)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc)"
passed=0
failed=0
problems=()

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# configure_and_build DIR FAULT TARGET...
configure_and_build() {
  local dir="$1" fault="$2"
  shift 2
  mkdir -p "$dir"
  cmake -S "$root" -B "$dir" -DSMT_FAULT="$fault" -DSMT_BUILD_BPF=OFF -DSMT_SANITIZE=OFF \
    >"$dir/gate.log" 2>&1 &&
    cmake --build "$dir" -j"$jobs" --target "${libs[@]}" "$@" >>"$dir/gate.log" 2>&1
}

# test_binary DIR TARGET: the path of a test target's executable.
test_binary() {
  find "$1/tests" -type f -name "$2" -perm -u+x -print -quit 2>/dev/null
}

# run_named BIN TEST: prints "pass", "fail" or "missing" (not in the binary).
run_named() {
  local bin="$1" test="$2" out
  if ! "$bin" --gtest_list_tests --gtest_filter="$test" 2>/dev/null | grep -q '^  '; then
    echo missing
    return
  fi
  if out="$("$bin" --gtest_filter="$test" --gtest_brief=1 2>&1)" &&
    ! grep -q '^\[  FAILED  \]' <<<"$out"; then
    echo pass
  else
    echo fail
  fi
}

check() {  # check OK MESSAGE
  if (($1)); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    problems+=("$2")
  fi
}

selected=("$@")
rows=()
for row in "${faults[@]}"; do
  name="${row%%|*}"
  if ((${#selected[@]} == 0)) || [[ " ${selected[*]} " == *" $name "* ]]; then
    rows+=("$row")
  fi
done
if ((${#rows[@]} == 0)); then
  echo "mutation-gate: no fault named ${selected[*]}; known: $(printf '%s ' "${faults[@]%%|*}")" >&2
  exit 2
fi

# ---- baseline: the named tests pass without any fault -------------------------
start="$(date +%s.%N)"
baseline="$root/build-fault-none"
targets=()
for row in "${rows[@]}"; do
  IFS='|' read -r _ target _ <<<"$row"
  [[ " ${targets[*]} " == *" $target "* ]] || targets+=("$target")
done
echo "==> baseline (no fault): building ${libs[*]} ${targets[*]} in ${baseline#"$root"/}"
if configure_and_build "$baseline" "" "${targets[@]}"; then
  for target in "${targets[@]}"; do
    bin="$(test_binary "$baseline" "$target")"
    ok=1
    for row in "${rows[@]}"; do
      IFS='|' read -r name t tests <<<"$row"
      [[ "$t" == "$target" ]] || continue
      IFS=',' read -ra names <<<"$tests"
      for test in "${names[@]}"; do
        verdict="$(run_named "$bin" "$test")"
        printf '  %-78s %s\n' "$target $test" "$verdict"
        if [[ "$verdict" != pass ]]; then
          ok=0
          problems+=("baseline: $test ($target) did not pass: $verdict")
        fi
      done
    done
    check "$ok" "baseline: named tests of $target must pass without a fault"
  done
else
  check 0 "baseline build failed (see ${baseline}/gate.log)"
fi
echo "--- baseline: $(elapsed "$start")s"

# ---- each fault must be caught ------------------------------------------------
for row in "${rows[@]}"; do
  IFS='|' read -r name target tests <<<"$row"
  start="$(date +%s.%N)"
  dir="$root/build-fault-$name"
  echo "==> fault $name: building ${libs[*]} $target in ${dir#"$root"/}"
  if ! configure_and_build "$dir" "$name" "$target"; then
    check 0 "fault $name: build failed (see $dir/gate.log)"
    echo "--- fault $name: $(elapsed "$start")s"
    continue
  fi
  bin="$(test_binary "$dir" "$target")"
  caught=()
  missing=0
  IFS=',' read -ra names <<<"$tests"
  for test in "${names[@]}"; do
    verdict="$(run_named "$bin" "$test")"
    case "$verdict" in
      fail) caught+=("$test"); printf '  %-78s %s\n' "$test" "FAILED (fault caught)" ;;
      pass) printf '  %-78s %s\n' "$test" "passed (fault not noticed)" ;;
      *) printf '  %-78s %s\n' "$test" "$verdict"
         missing=1
         problems+=("fault $name: $test is not in $target") ;;
    esac
  done
  if ((missing)); then
    check 0 "fault $name: the table names a test $target does not have"
  elif ((${#caught[@]} > 0)); then
    echo "  fault $name caught by ${#caught[@]}/${#names[@]} named tests"
    check 1 ""
  else
    echo "  fault $name survived"
    check 0 "fault $name survived: none of $tests failed"
  fi
  echo "--- fault $name: $(elapsed "$start")s"
done

for p in "${problems[@]}"; do
  echo "FAIL: $p"
done
echo "$passed passed, $failed failed, 0 skipped"
((failed == 0))
