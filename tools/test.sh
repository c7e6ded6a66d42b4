#!/usr/bin/env bash
# Runs SMT's whole test suite: installs what it needs, configures and builds
# build/, mounts bpffs when root, runs every ctest test (label `unit` in
# parallel, the privileged rest one at a time) and ends with exactly one line:
#
#   N passed, N failed, N skipped
#
# Exit status: non-zero if the build or any test failed, if no test ran, or,
# under SMT_REQUIRE_ALL=1 (CI), if any test skipped.
#
#   bash tools/test.sh                       # from any directory
#   SMT_REQUIRE_ALL=1 bash tools/test.sh     # a skip is a failure
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
jobs="$(nproc)"
results="$build/Testing/junit"

stage_names=()
stage_secs=()
stage_start=0
now() { date +%s.%N; }
begin() {
  echo "==> $1"
  stage_names+=("$1")
  stage_start="$(now)"
}
end() {
  local secs
  secs="$(awk -v a="$stage_start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
  stage_secs+=("$secs")
  echo "--- ${stage_names[-1]}: ${secs}s"
}

failures=()

begin deps
bash "$root/tools/install-deps.sh" || failures+=("tools/install-deps.sh failed")
end

begin configure
# Pin the options this build is about, whatever an earlier run cached.
configured=1
if ! cmake -S "$root" -B "$build" -DSMT_FAULT= -DSMT_SANITIZE=OFF -DSMT_BUILD_BPF=ON >/dev/null
then
  failures+=("cmake could not configure $build")
  configured=0
fi
end

begin build
if ((!configured)); then
  echo "skipped: not configured"
elif ! cmake --build "$build" -j"$jobs"; then
  # Keep going so every test that did build still runs; the binaries that did
  # not build show up as failed <target>_NOT_BUILT tests.
  failures+=("the build failed (see the compiler output above)")
  generator="$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$build/CMakeCache.txt")"
  case "$generator" in
    Ninja*) cmake --build "$build" -j"$jobs" -- -k 0 >/dev/null 2>&1 || true ;;
    *) cmake --build "$build" -j"$jobs" -- -k >/dev/null 2>&1 || true ;;
  esac
fi
end

begin bpffs
if ((EUID == 0)); then
  if ! mountpoint -q /sys/fs/bpf; then
    if mount -t bpf bpf /sys/fs/bpf; then
      echo "mounted bpffs at /sys/fs/bpf"
    else
      echo "could not mount bpffs at /sys/fs/bpf: bpf tests will skip or fail"
    fi
  else
    echo "/sys/fs/bpf already mounted"
  fi
else
  echo "not root: privileged (bpf) tests will skip"
fi
end

begin ctest
rm -rf "$results"
mkdir -p "$results"
if ((configured)); then
  # Unprivileged tests in parallel; the rest (BPF, namespaces) one at a time.
  ctest --test-dir "$build" -L unit -j"$jobs" --timeout 900 --output-on-failure \
    --output-junit "$results/unit.xml" || true
  ctest --test-dir "$build" -LE unit --timeout 900 --output-on-failure \
    --output-junit "$results/privileged.xml" || true
fi
end

begin selftests
# Namespace scenarios (selftests/run.sh, docs/selftests.md); not root: each skips.
if ((configured)); then
  SMT_BUILD_DIR="$build" SMT_SELFTEST_NO_BUILD=1 \
    bash "$root/selftests/run.sh" --junit "$results/selftests.xml" || true
fi
end

echo "stage times: $(for i in "${!stage_names[@]}"; do
  printf '%s %ss  ' "${stage_names[$i]}" "${stage_secs[$i]}"
done)"

# Counts from ctest's JUnit files (rules in tools/junit-summary.py).
passed=0 failed=0 skipped=0
read -r passed failed skipped < <(python3 "$root/tools/junit-summary.py" "$results" "$results"/*.xml) ||
  failures+=("could not count the results in $results")
: "${passed:=0}" "${failed:=0}" "${skipped:=0}"

if ((failed > 0)); then
  echo "failed tests:"
  sed 's/^/  /' "$results/failed.txt"
  failures+=("$failed tests failed")
fi
if ((skipped > 0)); then
  echo "skipped tests:"
  sed 's/^/  /' "$results/skipped.txt"
  if [[ "${SMT_REQUIRE_ALL:-}" == 1 ]]; then
    failures+=("SMT_REQUIRE_ALL=1 but $skipped tests skipped: $(paste -sd, "$results/skipped.txt")")
  fi
fi
if ((passed + failed + skipped == 0)); then
  failures+=("no test ran")
fi
for f in "${failures[@]}"; do
  echo "FAIL: $f"
done
echo "$passed passed, $failed failed, $skipped skipped"
((${#failures[@]} == 0))
