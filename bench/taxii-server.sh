# Sourced by the TAXII benchmarks: builds `crrt` unless CRRT_BIN names
# another build (say, an older commit's), starts `crrt serve --demo` on a
# free loopback port in a temporary folder (removed on exit), and sets
# $bin, $work, $server, $port and $token (the demo partner's API token,
# used as the Basic password). Needs $total, the objects to add.
# Five steps of whole envelopes of 5,000 objects each.
[ $((total % 25000)) -eq 0 ] && [ "$total" -gt 0 ] ||
  { echo "N must be a multiple of 25,000 (five steps of 5,000-object envelopes)" >&2; exit 2; }
python3 -c "import taxii2client" 2>/dev/null || { echo "needs: pip install taxii2-client" >&2; exit 2; }
if [ -z "${CRRT_BIN:-}" ]; then cargo build --release --quiet -p crrt; fi
bin=${CRRT_BIN:-${CARGO_TARGET_DIR:-target}/release/crrt}
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$((20900 + RANDOM % 1000))
"$bin" serve --demo --no-worker --listen "127.0.0.1:$port" --data-dir "$work/data" > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" && break; sleep 0.1; done
token=$("$bin" admin --data-dir "$work/data" create-token --email sam@northwind.example --name bench 2>/dev/null)
