#!/usr/bin/env bash
# Benchmark: `crrt watch` with N targets (default 5,000) at a 60 s interval
# against loopback web servers, for D seconds (default 300: five rounds).
# Each target is its own host (127.0.x.y, so no connection is shared) on one
# of four Python servers that answer with a small page. Reported: how late
# checks started against their schedule (crrt's own summary line), the
# alerts seen (there must be none), and the peak memory (GNU time's
# maximum resident set). Release build.
# Usage: bench/watch.sh [N] [D]
set -euo pipefail
cd "$(dirname "$0")/.."
targets=${1:-5000}
seconds=${2:-300}
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install time" >&2; exit 2; }
cargo build --release --quiet -p crrt
bin=${CARGO_TARGET_DIR:-target}/release/crrt
work=$(mktemp -d)
servers=()
cleanup() { for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
base=$((21000 + RANDOM % 1000))
for n in 0 1 2 3; do
  python3 - $((base + n)) <<'PY' &
import sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
PAGE = ("<html><head><title>Ministry</title></head><body><h1>Ministry of Foreign Affairs</h1>"
        "<p>Statement of the ministry on the situation at the border.</p></body></html>").encode()
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)
    def log_message(self, *args):
        pass
ThreadingHTTPServer.request_queue_size = 1024
ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
PY
  servers+=($!)
done
sleep 1
python3 - "$targets" "$base" > "$work/watch.toml" <<'PY'
import sys
targets, base = int(sys.argv[1]), int(sys.argv[2])
print('[defaults]\ninterval = "60s"\ntimeout = "10s"\n')
for i in range(targets):
    host = f"127.{1 + i // 62500}.{(i // 250) % 250}.{1 + i % 250}"
    print(f'[[target]]\nname = "site-{i}"\nurl = "http://{host}:{base + i % 4}/"\n')
PY
echo "$targets targets, 60 s interval, ${seconds} s; machine: $(nproc) cores, $(uname -r)"
/usr/bin/time -f "peak memory: %M KiB; cpu: %U s user, %S s system" \
  "$bin" watch "$work/watch.toml" --for "${seconds}s" > "$work/alerts.txt" 2> "$work/stderr.txt"
grep -E "checks started late|peak memory" "$work/stderr.txt"
echo "alerts: $(wc -l < "$work/alerts.txt")"
head -5 "$work/alerts.txt"
