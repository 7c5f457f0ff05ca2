#!/usr/bin/env bash
# Benchmark: crrt hunt over the shared EVTX corpus with the SigmaHQ Windows,
# emerging-threats and threat-hunting rules. Prints the median wall time and
# peak memory of N runs (default 5). Usage: bench/hunt.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
data=../shared/data
[ -d "$data/evtx-attack-samples" ] || { echo "needs $data (the shared corpus)" >&2; exit 2; }
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/crrt
args=(hunt "$data/evtx-attack-samples"
  --sigma "$data/sigma/rules/windows" --sigma "$data/sigma/rules-emerging-threats"
  --sigma "$data/sigma/rules-threat-hunting" --format jsonl --output /dev/null)
walls=() ; rss=()
for _ in $(seq "$runs"); do
  out=$( { /usr/bin/time -f '%e %M' "$bin" "${args[@]}" --quiet ; } 2>&1 | tail -1)
  walls+=("${out% *}") ; rss+=("${out#* }")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "runs: $runs"
echo "wall median: $(median "${walls[@]}") s   (all: ${walls[*]})"
echo "peak RSS median: $(( $(median "${rss[@]}") / 1024 )) MiB"
# One run with the summary, for rules-loading time and events/s.
"$bin" "${args[@]}" 2>&1 | grep -E "events |rules |findings |time "
