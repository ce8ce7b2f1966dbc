#!/usr/bin/env bash
# A real TURN server (Debian's coturn) on loopback for the relay-only link test.
#
#   tests/relays/coturn.sh start PORT DIR   user "spaces", password "spaces-secret", realm "spaces.test"
#   tests/relays/coturn.sh stop DIR
set -euo pipefail
case "${1:-}" in
  start)
    port="${2:?port}"; dir="${3:?dir}"
    command -v turnserver >/dev/null || { echo "coturn is not installed (apt-get install coturn)" >&2; exit 1; }
    mkdir -p "$dir"
    turnserver -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$port" \
      --min-port=$((port + 1)) --max-port=$((port + 400)) \
      --lt-cred-mech --user=spaces:spaces-secret --realm=spaces.test --fingerprint \
      --no-tls --no-dtls --no-cli --allow-loopback-peers --no-multicast-peers \
      --pidfile="$dir/turnserver.pid" --log-file="$dir/turnserver.log" --simple-log \
      > "$dir/stdout.log" 2>&1 &
    echo $! > "$dir/turn.pid"
    for _ in $(seq 1 50); do
      if grep -q "Total General servers" "$dir/turnserver.log" 2>/dev/null || grep -qi "listener opened on" "$dir/turnserver.log" 2>/dev/null; then exit 0; fi
      sleep 0.1
    done
    # Some builds log elsewhere: accept a live process.
    kill -0 "$(cat "$dir/turn.pid")" 2>/dev/null && exit 0
    echo "coturn did not start; logs:" >&2; cat "$dir"/*.log >&2; exit 1
    ;;
  stop)
    dir="${2:?dir}"
    if [ -f "$dir/turn.pid" ]; then kill "$(cat "$dir/turn.pid")" 2>/dev/null || true; rm -f "$dir/turn.pid"; fi
    ;;
  *) echo "usage: $0 start PORT DIR | stop DIR" >&2; exit 2 ;;
esac
