#!/usr/bin/env bash
# Swift on Linux, for the Swift bindings and the iOS shell's platform-free code: Debian trixie's
# swiftlang (6.0.3) in a debootstrap chroot. Bookworm has no Swift, and trixie's cannot run on
# bookworm's older libc, so it gets a root of its own; the host-built libspaces_ffi.so (older
# glibc) loads fine inside.
#
#   scripts/swift-linux.sh setup              # the chroot, once (~1 min, ~2.6 GB)
#   scripts/swift-linux.sh test PACKAGE_DIR   # `swift test` of a package, lib/ inside it
#
# SWIFT_ROOT moves the chroot (default /var/cache/spaces-swift/trixie); DEBIAN_MIRROR the
# mirror (default: the one apt uses here).
set -euo pipefail

ROOT=${SWIFT_ROOT:-/var/cache/spaces-swift/trixie}
MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

retry() { "$@" || { echo "swift-linux: retrying once: $*" >&2; sleep 10; "$@"; }; }

mounts_under() { awk -v r="$1" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r; }

unmount_all() {
  local dir
  for dir in $(mounts_under "$1"); do umount -l "$dir" || true; done
}

mount_all() {
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  mountpoint -q "$ROOT/sys" || mount -t sysfs sys "$ROOT/sys"
  mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
  mountpoint -q "$ROOT/dev/pts" || mount --bind /dev/pts "$ROOT/dev/pts"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
}

setup() {
  # A marker, not the swift binary: inside the chroot it is a symlink the host cannot resolve.
  if [ -f "$ROOT/.spaces-swift-ready" ]; then return 0; fi
  unmount_all "$ROOT"
  rm -rf "$ROOT"
  command -v debootstrap >/dev/null || retry apt-get install -y --no-install-recommends debootstrap
  local partial="$ROOT.partial"
  # Never delete a tree with something mounted in it (a bound /dev would go with it).
  unmount_all "$partial"
  rm -rf "$partial"
  mkdir -p "$(dirname "$ROOT")"
  if ! debootstrap --variant=minbase --arch=amd64 trixie "$partial" "$MIRROR"; then
    echo "swift-linux: debootstrap failed; trying once more" >&2
    unmount_all "$partial"
    rm -rf "$partial"
    sleep 10
    debootstrap --variant=minbase --arch=amd64 trixie "$partial" "$MIRROR"
  fi
  unmount_all "$partial"
  mv "$partial" "$ROOT"
  mount_all
  trap 'unmount_all "$ROOT"' EXIT
  retry chroot "$ROOT" apt-get update
  retry chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    swiftlang libc6-dev libstdc++-14-dev libasound2t64
  chroot "$ROOT" apt-get clean
  # No sound card here: ALSA's default device is a null one.
  printf 'pcm.!default { type null }\n' > "$ROOT/root/.asoundrc"
  chroot "$ROOT" swift --version
  touch "$ROOT/.spaces-swift-ready"
}

run_tests() {
  local package
  package=$(cd "$1" && pwd)
  setup
  mount_all
  mkdir -p "$ROOT/pkg"
  trap 'unmount_all "$ROOT"' EXIT
  mountpoint -q "$ROOT/pkg" || mount --bind "$package" "$ROOT/pkg"
  # XCTest's closing line is the summary; Swift 6's own runner would add a "0 tests" line.
  chroot "$ROOT" /bin/bash -c 'cd /pkg && swift test --disable-swift-testing \
    -Xlinker -L/pkg/lib -Xlinker -rpath -Xlinker /pkg/lib'
}

case "${1:-}" in
  setup) setup ;;
  test) run_tests "${2:?package directory}" ;;
  *) echo "usage: $0 setup | test PACKAGE_DIR" >&2; exit 2 ;;
esac
