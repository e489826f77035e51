#!/usr/bin/env bash
# Runs the project's CI (`bash .ci/run`: the README's setup and test commands) on a fresh Debian 12
# root, as a new machine of this project's kind would: only the Debian packages of the kind's image
# list, plus what such a machine has beyond packages (its Node.js build, CA certificates, root's npm
# configuration, the certificate environment variables). What a developer installed by hand here
# cannot hide a missing setup step there.
#
#   scripts/check-fresh.sh            clone HEAD (committed work only) and run .ci/run in the root
#   scripts/check-fresh.sh --shell    the same root, an interactive shell instead of .ci/run
#
# Settings (environment):
#   LEANEMBED_FRESH_PACKAGES  the image's package list ("apt<TAB>name<TAB>version" lines; default
#                             /work/.library/env/packages/installed-cpp.txt)
#   LEANEMBED_FRESH_CACHE     where the base root is built once and kept (default
#                             /var/cache/leanembed-check-fresh); a changed list builds a new one
#   LEANEMBED_FRESH_MIRROR    Debian mirror for debootstrap (default http://deb.debian.org/debian)
#
# Each run gets a copy-on-write overlay of the cached base root, so the base stays clean. /proc,
# /sys and /dev are mounted for the run and everything is unmounted afterwards, also on failure or
# interrupt. Needs root. Prints the verdict and the time taken; exits with .ci/run's status.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$here/../shared" 2>/dev/null && pwd) || { echo "check-fresh: ../shared not found beside $here" >&2; exit 2; }
list=${LEANEMBED_FRESH_PACKAGES:-/work/.library/env/packages/installed-cpp.txt}
cache=${LEANEMBED_FRESH_CACHE:-/var/cache/leanembed-check-fresh}
mirror=${LEANEMBED_FRESH_MIRROR:-http://deb.debian.org/debian}
mode=ci
[ "${1:-}" = "--shell" ] && mode=shell

[ "$(id -u)" -eq 0 ] || { echo "check-fresh: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
[ -f "$list" ] || { echo "check-fresh: package list '$list' not found (set LEANEMBED_FRESH_PACKAGES)" >&2; exit 2; }
command -v debootstrap >/dev/null || {
  echo "check-fresh: installing debootstrap"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
}
started=$(date +%s)

# --- the base root: debootstrap + the image's Debian packages, built once per list -------------------
# Packages from other origins are left out: nodejs here is NodeSource's build (copied in below).
packages=$(awk -F'\t' '$1 == "apt" && $3 !~ /nodesource/ { sub(":amd64$", "", $2); print $2 }' "$list" | sort -u)
recipe=1   # raise when the way the base root is built changes
key=$( { printf '%s\n' "$packages"; echo "recipe $recipe"; } | sha256sum | cut -c1-16)
base="$cache/base-$key"
if [ ! -f "$base/.complete" ]; then
  echo "check-fresh: building the base root $base (once; takes a while)"
  umount "$base.tmp/proc" 2>/dev/null || true   # left by an interrupted build
  rm -rf "$base" "$base.tmp"; mkdir -p "$cache"
  debootstrap --variant=minbase bookworm "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { echo "check-fresh: debootstrap failed, see $cache/debootstrap.log" >&2; exit 1; }
  cp /etc/apt/sources.list.d/debian.sources "$base.tmp/etc/apt/sources.list.d/" 2>/dev/null &&
    rm -f "$base.tmp/etc/apt/sources.list"
  cp /etc/resolv.conf "$base.tmp/etc/resolv.conf"
  mount -t proc proc "$base.tmp/proc"
  trap 'umount "$base.tmp/proc" 2>/dev/null || true' EXIT
  chroot "$base.tmp" apt-get update -q >>"$cache/debootstrap.log" 2>&1
  # Only what Debian serves (the list also names packages of repositories the image had).
  served=$(chroot "$base.tmp" apt-cache policy $packages 2>/dev/null |
           awk '/^[^ ]/ { p = $1; sub(":$", "", p) } /Candidate:/ && $2 != "(none)" { print p }')
  missing=$(comm -23 <(printf '%s\n' $packages | sort) <(printf '%s\n' $served | sort) | tr '\n' ' ')
  echo "check-fresh: $(echo "$served" | wc -w) packages to install; not served by Debian: ${missing:-none}"
  DEBIAN_FRONTEND=noninteractive chroot "$base.tmp" apt-get install -y -q --no-install-recommends $served \
    >>"$cache/debootstrap.log" 2>&1 ||
    { echo "check-fresh: installing the image's packages failed, see $cache/debootstrap.log" >&2; exit 1; }
  chroot "$base.tmp" apt-get clean
  umount "$base.tmp/proc"; trap - EXIT
  touch "$base.tmp/.complete"
  mv "$base.tmp" "$base"
fi
# --- end of base root ------------------------------------------------------------------------------

# --- this run: an overlay of the base, the machine's extras, a clone of the checkout ----------------
run=$(mktemp -d /var/tmp/leanembed-fresh.XXXXXX)
rootfs="$run/root"
mkdir -p "$run/upper" "$run/work" "$rootfs"
mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  rm -rf "$run"
}
trap cleanup EXIT INT TERM
mount -t overlay overlay -o "lowerdir=$base,upperdir=$run/upper,workdir=$run/work" "$rootfs"
mounted+=("$rootfs")

# This machine's Node.js build and npm (not a Debian package), its CA certificates (system store with
# the locally added ones), root's npm configuration, DNS.
cp -a /usr/bin/node "$rootfs/usr/bin/node"
mkdir -p "$rootfs/usr/lib/node_modules" "$rootfs/usr/include"
cp -a /usr/lib/node_modules/. "$rootfs/usr/lib/node_modules/"
[ -d /usr/include/node ] && cp -a /usr/include/node "$rootfs/usr/include/"
for tool in npm npx corepack; do [ -L "/usr/bin/$tool" ] && cp -a "/usr/bin/$tool" "$rootfs/usr/bin/$tool"; done
mkdir -p "$rootfs/usr/local/share/ca-certificates"
cp -a /usr/local/share/ca-certificates/. "$rootfs/usr/local/share/ca-certificates/"
chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || true
cp --remove-destination /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
[ -f /root/.npmrc ] && cp /root/.npmrc "$rootfs/root/.npmrc"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"

# The checkout (committed work, as CI clones it) with ../shared beside it, read-only as in CI.
git clone -q "$here" "$rootfs/ci/leanembed"
cp -a "$shared" "$rootfs/ci/shared"
chmod -R a-w "$rootfs/ci/shared"

mount -t proc proc "$rootfs/proc"; mounted+=("$rootfs/proc")
mount -t sysfs sysfs "$rootfs/sys"; mounted+=("$rootfs/sys")
mount --bind /dev "$rootfs/dev"; mounted+=("$rootfs/dev")
mount -t devpts devpts "$rootfs/dev/pts" 2>/dev/null && mounted+=("$rootfs/dev/pts") || true
mount -t tmpfs tmpfs "$rootfs/dev/shm" && mounted+=("$rootfs/dev/shm")

# The environment a new machine's root shell has: PATH, HOME, and the certificate variables.
envs=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 CI=true)
for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE GIT_SSL_CAINFO REQUESTS_CA_BUNDLE; do
  [ -n "${!v:-}" ] && envs+=("$v=${!v}")
done

if [ "$mode" = shell ]; then
  chroot "$rootfs" /usr/bin/env -i "${envs[@]}" bash -c 'cd /ci/leanembed && exec bash -i'
  exit 0
fi
log="$cache/last-run.log"
echo "check-fresh: running 'bash .ci/run' in the fresh root (log: $log)"
set +e
chroot "$rootfs" /usr/bin/env -i "${envs[@]}" bash -c 'cd /ci/leanembed && bash .ci/run' </dev/null >"$log" 2>&1
status=$?
set -e
elapsed=$(($(date +%s) - started))
tail -n 15 "$log"
if [ $status -eq 0 ]; then verdict=PASSED; else verdict="FAILED (exit $status)"; fi
printf 'check-fresh: %s in %d min %02d s (commit %s)\n' "$verdict" $((elapsed / 60)) $((elapsed % 60)) \
  "$(git -C "$here" rev-parse --short HEAD)"
exit $status
