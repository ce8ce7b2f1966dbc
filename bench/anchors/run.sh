#!/bin/sh
# Runs our link and forwarding benchmark and its anchors one after the other on this machine:
# Pion v4 (Go; fetched from the module proxy on first use, retried once) for every figure, and
# Chromium's own WebRTC (Debian chromium, driven by playwright-core from tests/node, which
# `npm ci` there installs) for link set-up. Prints each figure with its ratios (ours / anchor):
# below 1, ours is cheaper or faster.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cd "$root"
cargo bench -q -p spaces-tests --bench rtc_hops > "$out/ours.txt"
cd "$here/pion"
go build -o "$out/pion" . || { sleep 5; go build -o "$out/pion" .; }
"$out/pion" > "$out/pion.txt"
node "$here/chromium.mjs" > "$out/chromium.txt"

# figure NAME PATTERN FIELD: the number after PATTERN in each report.
figure() {
  sed -n "s/.*$1[^0-9]*\([0-9.]*\).*/\1/p" "$2" | head -1
}
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "—" }'
}
row() {
  ours=$(figure "$2" "$out/ours.txt"); pion=$(figure "$2" "$out/pion.txt")
  chromium=$(figure "$2" "$out/chromium.txt"); chromium=${chromium:-—}
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$ours" "$pion" "$(ratio "$ours" "$pion")" \
    "$chromium" "$(ratio "$ours" "$chromium")"
}
echo "| Figure | Ours | Pion v4 | Ours / Pion | Chromium | Ours / Chromium |"
echo "|---|---|---|---|---|---|"
row "link set-up p50, ms" "link set-up.*p50"
row "link set-up p99, ms" "link set-up.*p99"
row "latency at depth 1 p50, µs" "depth 1: latency p50"
row "added per forwarding hop, µs" "added per forwarding hop (p50 slope, depth 1 -> 6):"
row "CPU per child stream at 10 children, % of a core" "at 10 children.*): "
row "CPU per child stream at 40 children, % of a core" "at 40 children.*): "
row "RSS per link (both ends), idle, KiB" "RSS per link.*idle"
row "RSS per link (both ends), with traffic, KiB" "RSS per link.*with traffic"
echo
echo "ours:"; cat "$out/ours.txt"
echo "pion:"; cat "$out/pion.txt"
echo "chromium:"; cat "$out/chromium.txt"
