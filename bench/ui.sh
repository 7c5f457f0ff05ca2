#!/usr/bin/env bash
# Benchmark: how fast the web UI's pages come back, on the demo data.
# Starts `crrt serve --demo` (SQLite), waits for the demo hunt's findings,
# signs in through the form (coordinator; admin for the audit page), then
# runs wrk with ONE connection for D seconds (default 5) per page, so the
# latency is one request at a time: rendering plus loopback. Prints p50 and
# p99 per page. Usage: bench/ui.sh [D]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet -p crrt
bin=${CARGO_TARGET_DIR:-target}/release/crrt
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port=$((19900 + RANDOM % 1000))
"$bin" serve --demo --listen "127.0.0.1:$port" --data-dir "$work/data" > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" && break; sleep 0.1; done
base="http://127.0.0.1:$port"
session() { # email -> "crrt_session=..."
  curl -s -o /dev/null -D - -d "email=$1&password=crrt-demo-2022" "$base/signin" \
    | awk -F'[ ;]' 'tolower($1) == "set-cookie:" && $2 ~ /^crrt_session=/ {print $2}'
}
coordinator=$(session rasa@ncsc.lt)
admin=$(session admin@crrt.example)
api() { curl -sf -H "Cookie: $coordinator" "$base/api/v1$1"; }
mission=$(api /missions | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
case=$(api "/missions/$mission/cases" | python3 -c 'import json,sys; print([c["id"] for c in json.load(sys.stdin)["items"] if c["title"].startswith("Wiped")][0])')
for _ in $(seq 100); do
  api "/cases/$case/hunts" | grep -q '"status":"done"' && break; sleep 0.2
done
findings=$(api "/cases/$case/findings?limit=500" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
echo "demo data: case with $findings findings; ${seconds}s per page, 1 connection"

measure() { # label, cookie, path
  local out p50 p99 rps non2xx
  out=$(wrk -t1 -c1 -d"${seconds}s" --latency -H "Cookie: $2" "$base$3")
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf '%-22s p50 %8s   p99 %8s   %9s req/s   non-2xx %s\n' "$1" "$p50" "$p99" "$rps" "${non2xx:-0}"
}
measure "dashboard" "$coordinator" /dashboard
measure "requests" "$coordinator" /requests
measure "mission" "$coordinator" "/missions/$mission"
measure "team proposal" "$coordinator" "/missions/$mission/team"
measure "case" "$coordinator" "/cases/$case"
measure "findings" "$coordinator" "/cases/$case/findings"
measure "timeline" "$coordinator" "/cases/$case/timeline"
measure "roster" "$coordinator" /roster
measure "audit (admin)" "$admin" /audit
