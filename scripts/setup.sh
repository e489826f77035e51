#!/usr/bin/env bash
# Installs everything leanembed needs to build, test and benchmark on Debian 12: the apt packages
# (compilers, libraries, tools) and the npm reference peers in peers/. Idempotent: a second run
# installs nothing new. Needs root (or sudo) for apt.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

apt_packages=(
  build-essential cmake ninja-build pkg-config git time
  libdnnl-dev ocl-icd-opencl-dev libutf8proc-dev nlohmann-json3-dev libcpp-httplib-dev libmicrohttpd-dev libcli11-dev liblmdb-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev libomp-14-dev
  python3-onnx python3-numpy gnuplot-nox
  haproxy python3-distributed
)

missing=()
# Node.js: the machine image may bring its own (with npm); Debian's otherwise.
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing apt packages: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: apt packages already installed"
fi

# npm peers (reference implementations for tests and benchmarks), pinned by peers/package-lock.json.
# onnxruntime-node's postinstall would download a GPU provider: skip it, the CPU library is in the package.
cd "$here/peers"
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
   && npm ls --omit=dev >/dev/null 2>&1; then
  echo "setup: npm peers already installed"
else
  echo "setup: installing npm peers"
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
fi
echo "setup: done"
