#!/usr/bin/env bash
# Installs everything leanembed needs to build, test and benchmark on Debian 12: the apt packages
# (compilers, libraries, tools) and the npm reference peers in peers/; then builds the release CLI,
# which bin/leanembed runs. Idempotent: a second run installs nothing new and rebuilds only what
# changed. Needs root (or sudo) for apt. Checked on a fresh Debian 12 root by scripts/check-fresh.sh:
# a package that is only a Recommends of another (installed here with --no-install-recommends) must be
# named in the list below.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

apt_packages=(
  build-essential cmake ninja-build pkg-config git time ca-certificates
  libdnnl-dev ocl-icd-opencl-dev libutf8proc-dev nlohmann-json3-dev libcpp-httplib-dev libmicrohttpd-dev libcli11-dev liblmdb-dev
  libcurl4-openssl-dev libssl-dev
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
# The Node.js package's build tools (cmake-js, node-addon-api, node-api-headers) and dev tools,
# pinned by bindings/node/package-lock.json. --ignore-scripts: the package's own install script
# builds the addon, which scripts/test.sh's node stage does instead.
cd "$here/bindings/node"
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
   && npm ls >/dev/null 2>&1; then
  echo "setup: bindings/node npm packages already installed"
else
  echo "setup: installing bindings/node npm packages"
  npm ci --ignore-scripts --no-audit --no-fund
fi

# The release build: the CLI now (bin/leanembed runs it); scripts/test.sh builds the rest of the same
# tree with the same settings, so nothing is compiled twice.
cd "$here"
echo "setup: building the release CLI (build/release)"
"$here/scripts/configure-release.sh" >/dev/null
cmake --build build/release -j "$(nproc)" --target leanembed_cli
echo "setup: done — try: bin/leanembed embed --model ../shared/models/minilm-l6-synthetic \"A sentence to embed.\""
