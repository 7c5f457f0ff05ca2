#!/usr/bin/env bash
# Benchmark: the platform API over loopback with wrk (Debian package `wrk`).
# Starts `crrt serve --demo` on SQLite (and on PostgreSQL when
# CRRT_BENCH_POSTGRES_URL names a server where databases may be created),
# then measures requests/s and p50/p99 latency for reading a mission
# (GET /api/v1/missions/{id}) and for creating notes
# (POST /api/v1/cases/{id}/notes), each for D seconds (default 10) with
# 16 connections on 2 wrk threads. wrk runs on the same machine as the
# server: on 2 cores they compete, so read the figures as a floor.
# Usage: bench/api.sh [D]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet -p crrt
bin=${CARGO_TARGET_DIR:-target}/release/crrt
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cat > "$work/note.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"body": "Seen **again** on `FS03`: same scheduled task, same driver."}'
wrk.headers["Content-Type"] = "application/json"
LUA

run() { # label, store arguments...
  local label=$1; shift
  local port=$((18900 + RANDOM % 1000))
  "$bin" serve --demo --listen "127.0.0.1:$port" "$@" > "$work/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" && break; sleep 0.1; done
  local token
  token=$("$bin" admin "$@" create-token --email rasa@ncsc.lt --name bench 2>/dev/null)
  local base="http://127.0.0.1:$port/api/v1"
  local mission case
  mission=$(curl -sf -H "Authorization: Bearer $token" "$base/missions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
  case=$(curl -sf -H "Authorization: Bearer $token" "$base/missions/$mission/cases" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
  report() { # what, wrk output
    local rps p50 p99
    rps=$(echo "$2" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$2" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$2" | awk '$1 == "99%" {print $2}')
    local errors
    errors=$(echo "$2" | awk '/Non-2xx/ {print $NF}')
    printf '%-10s %-22s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$label" "$1" "$rps" "$p50" "$p99" "${errors:-0}"
  }
  report "read a mission" "$(wrk -t2 -c16 -d"${seconds}s" --latency -H "Authorization: Bearer $token" "$base/missions/$mission")"
  report "create a note" "$(wrk -t2 -c16 -d"${seconds}s" --latency -s "$work/note.lua" -H "Authorization: Bearer $token" "$base/cases/$case/notes")"
  kill "$server"; wait "$server" 2>/dev/null || true; server=
}

run sqlite --data-dir "$work/data"
if [ -n "${CRRT_BENCH_POSTGRES_URL:-}" ]; then
  db="crrt_bench_$$"
  psql -q "$CRRT_BENCH_POSTGRES_URL" -c "CREATE DATABASE $db" >/dev/null
  run postgres --database "${CRRT_BENCH_POSTGRES_URL%/*}/$db"
  psql -q "$CRRT_BENCH_POSTGRES_URL" -c "DROP DATABASE $db" >/dev/null || true
else
  echo "postgres   skipped (set CRRT_BENCH_POSTGRES_URL=postgres://user@host/postgres)"
fi
