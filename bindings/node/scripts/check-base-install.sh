#!/usr/bin/env bash
# Installs a leanembed tarball (`npm pack`) into a minimal Debian 12 root — debootstrap's minbase:
# no compiler, no -dev package, none of the libraries the addon links — with this machine's node
# and npm, offline, and embeds a sentence there: the check that the prebuilt addon and the shared
# libraries beside it are all a plain Debian 12 machine needs. Needs root; the root is built once
# (network to the Debian mirror) and kept in $LEANEMBED_BASE_ROOT (default
# /var/cache/leanembed-node-minbase); each run works in a throw-away folder inside it.
#   bindings/node/scripts/check-base-install.sh leanembed-0.1.0.tgz [MODEL_DIR (default ../shared tiny-bert-synthetic)]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tarball=$(realpath "${1:?usage: check-base-install.sh TARBALL [MODEL_DIR]}")
model=$(realpath "${2:-$here/../../../shared/models/tiny-bert-synthetic}")
root=${LEANEMBED_BASE_ROOT:-/var/cache/leanembed-node-minbase}
[ "$(id -u)" -eq 0 ] || { echo "check-base-install: needs root (debootstrap, chroot)" >&2; exit 2; }
if [ ! -f "$root/.complete" ]; then
  command -v debootstrap >/dev/null || { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
  echo "check-base-install: debootstrap --variant=minbase bookworm $root (once)"
  rm -rf "$root"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  touch "$root/.complete"
fi
run=$(mktemp -d "$root/tmp/check.XXXXXX")
mounted=()
cleanup() { for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done; rm -rf "$run"; }
trap cleanup EXIT INT TERM
cp -a /usr/bin/node "$root/usr/bin/node"
mkdir -p "$root/usr/lib/node_modules"; cp -a /usr/lib/node_modules/npm "$root/usr/lib/node_modules/"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
mkdir -p "$run/project" "$run/model"
cp "$tarball" "$run/"
cp -a "$model/." "$run/model/"
echo '{"name":"consumer","private":true}' > "$run/project/package.json"
mount -t proc proc "$root/proc"; mounted+=("$root/proc")
mount --bind /dev "$root/dev"; mounted+=("$root/dev")
inside=${run#"$root"}
echo "check-base-install: compilers in the root: $(chroot "$root" sh -c 'command -v gcc cc c++ g++ || echo none');" \
  "-dev packages: $(chroot "$root" sh -c "dpkg-query -W -f='\${Package}\n' | grep -c -- '-dev\$' || true")"
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/bin:/bin bash -c "cd $inside/project &&
  npm install --offline --cache $inside/npm-cache --no-audit --no-fund ../$(basename "$tarball") >/dev/null 2>&1 &&
  MODEL=$inside/model node -e '
    const { Embedder } = require(\"leanembed\");
    (async () => {
      const e = await Embedder.load({ model: process.env.MODEL });
      const v = await e.embed(\"hello from a plain Debian 12\");
      const files = require(\"fs\").readFileSync(\"/proc/self/maps\", \"utf8\").split(\"\\n\").map((l) => l.split(/\\s+/).pop());
      const libs = [...new Set(files.filter((f) => /\\.so/.test(f)))];
      console.log(\"check-base-install: embedded\", v.length, \"floats on the\", e.info().path, \"path;\",
        libs.filter((f) => f.includes(\"/prebuilds/\")).length, \"libraries from the package; from the system:\",
        libs.filter((f) => !f.includes(\"/prebuilds/\")).map((f) => f.split(\"/\").pop()).join(\" \"));
      await e.dispose();
    })().catch((err) => { console.error(err); process.exit(1); });'"
echo "check-base-install: PASSED"
