#!/usr/bin/env bash
# Installs every Debian 12 package SMT needs to build and test. Idempotent: packages
# already present are left alone, so a second run costs one dpkg query.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git
  clang llvm lld libclang-rt-14-dev
  # BPF
  libbpf-dev bpftool libelf-dev zlib1g-dev libxdp-dev xdp-tools
  # crypto, CLI, tests, benchmarks
  libssl-dev openssl libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  # the test and benchmark drivers
  python3 iproute2 util-linux procps tcpdump
  # smtd tests: an independent TLS 1.3 client
  gnutls-bin
  # tools/bench.sh: plots, the TCP latency calibration, SMT_BENCH_PROFILE's profiles
  gnuplot-nox sockperf linux-perf
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if ((EUID != 0)); then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or install them yourself) and try again" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
