#!/usr/bin/env bash
# The independent relay for integration tests: PyPI `nostr-relay` (Python, SQLite), not written
# here and not sharing code with nostr-sdk.
#
#   tests/relays/nostr-relay.sh install          create .venv-relay (idempotent)
#   tests/relays/nostr-relay.sh start PORT DIR   start on 127.0.0.1:PORT with its data in DIR
#   tests/relays/nostr-relay.sh stop DIR         stop the relay started with DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-relay"
version="1.14"

case "${1:-}" in
  install)
    if [ ! -x "$venv/bin/nostr-relay" ]; then
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q --disable-pip-version-check "nostr-relay==$version"
    fi
    ;;
  start)
    port="${2:?port}"; dir="${3:?data dir}"
    [ -x "$venv/bin/nostr-relay" ] || { echo "nostr-relay not installed: run $0 install" >&2; exit 1; }
    mkdir -p "$dir"
    cat > "$dir/config.yaml" <<YAML
storage:
  sqlalchemy.url: sqlite+aiosqlite:///$dir/nostr.sqlite3
gunicorn:
  bind: 127.0.0.1:$port
  workers: 1
  loglevel: warning
purple:
  host: 127.0.0.1
  port: $port
verification:
  nip05_verification: disabled
  expiration: 86400
  update_frequency: 3600
  blocking_regexes: []
limits:
  max_event_size: 131072
  max_tags: 512
  subscription_limit: 256
  message_timeout: 1800
  cleanup_interval: 3600
YAML
    "$venv/bin/nostr-relay" -c "$dir/config.yaml" serve > "$dir/relay.log" 2>&1 &
    echo $! > "$dir/relay.pid"
    # Ready when the port accepts connections.
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then exit 0; fi
      sleep 0.1
    done
    echo "nostr-relay did not start on $port; log:" >&2
    cat "$dir/relay.log" >&2
    exit 1
    ;;
  stop)
    dir="${2:?data dir}"
    if [ -f "$dir/relay.pid" ]; then
      pid="$(cat "$dir/relay.pid")"
      pkill -TERM -P "$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$dir/relay.pid"
    fi
    ;;
  *)
    echo "usage: $0 install | start PORT DIR | stop DIR" >&2
    exit 2
    ;;
esac
