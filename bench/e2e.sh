#!/usr/bin/env bash
# Benchmark: end to end in the platform, from upload to findings. Starts
# `crrt serve --demo --no-worker` (SQLite), uploads the shared EVTX corpus as
# one ZIP to two cases of the demo mission and the SigmaHQ Windows,
# emerging-threats and threat-hunting rules as a rule pack, then starts one
# hunt per case and waits for both, first with one `crrt worker`, then with
# two (a hunt runs on one worker; two workers take two hunts at once).
# Prints the seconds from the start of the uploads to the last finding stored.
# Usage: bench/e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data
[ -d "$data/evtx-attack-samples" ] || { echo "needs $data (the shared corpus)" >&2; exit 2; }
cargo build --release --quiet -p crrt
bin=${CARGO_TARGET_DIR:-target}/release/crrt
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
python3 - "$data" "$work" <<'PY'
import os, sys, zipfile
data, work = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(f"{work}/corpus.zip", "w", zipfile.ZIP_DEFLATED) as z:
    root = f"{data}/evtx-attack-samples"
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".evtx"):
                z.write(os.path.join(d, f), os.path.relpath(os.path.join(d, f), root))
with zipfile.ZipFile(f"{work}/rules.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for sub in ["rules/windows", "rules-emerging-threats", "rules-threat-hunting"]:
        root = f"{data}/sigma/{sub}"
        for d, _, files in os.walk(root):
            for f in files:
                if f.endswith(".yml"):
                    z.write(os.path.join(d, f), os.path.join(sub, os.path.relpath(os.path.join(d, f), root)))
PY

port=$((19900 + RANDOM % 90))
base="http://127.0.0.1:$port/api/v1"
"$bin" serve --demo --no-worker --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" && break; sleep 0.1; done
token=$("$bin" admin --data-dir "$work/data" create-token --email rasa@ncsc.lt --name bench 2>/dev/null)
auth=(-H "Authorization: Bearer $token")
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
mission=$(curl -sf "${auth[@]}" "$base/missions" | json '["items"][0]["id"]')
pack=$(curl -sf "${auth[@]}" --data-binary @"$work/rules.zip" "$base/rulepacks?name=sigmahq" | json '["id"]')

run() { # number of workers
  local n=$1 wp=()
  for i in $(seq "$n"); do
    "$bin" worker --data-dir "$work/data" --name "bench-$n-$i" > /dev/null 2>&1 &
    wp+=($!); pids+=($!)
  done
  local start hunts=()
  start=$(date +%s.%N)
  for c in 1 2; do
    local case
    case=$(curl -sf "${auth[@]}" -H 'content-type: application/json' \
      -d "{\"title\": \"bench $n workers, case $c\"}" "$base/missions/$mission/cases" | json '["id"]')
    curl -sf "${auth[@]}" --data-binary @"$work/corpus.zip" "$base/cases/$case/evidence?name=corpus-$n-$c.zip" > /dev/null
    hunts+=("$(curl -sf "${auth[@]}" -H 'content-type: application/json' \
      -d "{\"rulepacks\": [\"$pack\"]}" "$base/cases/$case/hunts" | json '["id"]')")
  done
  for h in "${hunts[@]}"; do
    while true; do
      status=$(curl -sf "${auth[@]}" "$base/hunts/$h" | json '["status"]')
      [ "$status" = queued ] || [ "$status" = running ] || break
      sleep 0.2
    done
    [ "$status" = done ] || { echo "hunt $h ended $status" >&2; exit 1; }
  done
  local end findings
  end=$(date +%s.%N)
  findings=$(curl -sf "${auth[@]}" "$base/hunts/${hunts[0]}" | json '["n_findings"]')
  printf '%d worker(s): 2 hunts (upload + hunt) in %.2f s; %s findings per case\n' "$n" "$(echo "$end - $start" | bc)" "$findings"
  for p in "${wp[@]}"; do kill "$p"; done
}
run 1
run 2
