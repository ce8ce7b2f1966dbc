#!/usr/bin/env bash
# Installs what building and testing Nostr Spaces core needs on Debian/Ubuntu with Rust
# (rustup) already present. Idempotent: skips what is already there.
set -euo pipefail

# debootstrap: the Debian trixie chroot the Swift tests run in (scripts/swift-linux.sh).
packages=(build-essential pkg-config cmake libasound2-dev coturn iproute2 iptables openjdk-17-jdk-headless maven python3-venv debootstrap)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # One retry of a failed download before giving up (mirrors have bad minutes).
  $sudo apt-get update -qq || { sleep 5; $sudo apt-get update -qq; }
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" || {
    sleep 5
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  }
fi

# Chromium: a real libwebrtc peer for the browser interop suite (tests/node), headless. With
# its recommended packages (fonts, Mesa), as a desktop install has them.
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "setup: installing chromium"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || { sleep 5; $sudo apt-get update -qq; }
  $sudo apt-get install -y -qq chromium || { sleep 5; $sudo apt-get install -y -qq chromium; }
fi

# Node.js runs the browser suite's driver (playwright-core, nostr-tools from npm).
command -v node >/dev/null || { echo "setup: no node on PATH" >&2; exit 1; }

# Java and Maven may come from elsewhere (SDKMAN, a JDK vendor): accept any on PATH.
command -v java >/dev/null || { echo "setup: no java on PATH" >&2; exit 1; }
command -v mvn >/dev/null || { echo "setup: no mvn on PATH" >&2; exit 1; }

rustup component add rustfmt clippy >/dev/null 2>&1 || true
echo "setup: ready ($(rustc --version), $(java -version 2>&1 | head -n1))"
