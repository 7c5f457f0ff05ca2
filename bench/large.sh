#!/usr/bin/env bash
# Benchmark: throughput on a large corpus against the parse-only floor.
# Builds a corpus of the shared EVTX samples copied until it passes 1 GB (in
# $CRRT_BENCH_DIR, default /tmp/crrt-large; nothing is written to the repo),
# then for a quarter of it and for all of it reports, as medians of N runs:
# the parse-only floor (every record rendered to JSON by the evtx crate, on
# all cores), and `crrt hunt` with the SigmaHQ Windows, emerging-threats and
# threat-hunting rules (warm rule cache): records/s, wall, peak RSS.
# Usage: bench/large.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
data=../shared/data
[ -d "$data/evtx-attack-samples" ] || { echo "needs $data (the shared corpus)" >&2; exit 2; }
dir=${CRRT_BENCH_DIR:-/tmp/crrt-large}
copies=28   # 28 x 38 MB of EVTX = 1.07 GB
if [ "$(find "$dir" -name '*.evtx' 2>/dev/null | wc -l)" -ne $((copies * 277)) ]; then
  rm -rf "$dir"
  for i in $(seq 1 $copies); do
    (cd "$data/evtx-attack-samples" && find . -name '*.evtx' -print0 |
      while IFS= read -r -d '' f; do mkdir -p "$dir/$i/$(dirname "$f")"; cp "$f" "$dir/$i/$f"; done)
  done
fi
cargo build --release --quiet -p crrt
cargo build --release --quiet -p crrt-hunt --example parse_floor
target=${CARGO_TARGET_DIR:-target}/release
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
rules=(--sigma "$data/sigma/rules/windows" --sigma "$data/sigma/rules-emerging-threats"
  --sigma "$data/sigma/rules-threat-hunting" --rule-cache "$cache")
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # label, paths...
  local label=$1; shift
  local fw=() fr=() hw=() hr=() hm=() fm=()
  for _ in $(seq "$runs"); do
    out=$( { /usr/bin/time -f 'TIME %e %M' "$target/examples/parse_floor" "$@"; } 2>&1 )
    fr+=("$(echo "$out" | sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p')")
    fw+=("$(echo "$out" | awk '/^TIME/ {print $2}')"); fm+=("$(echo "$out" | awk '/^TIME/ {print $3}')")
    out=$( { /usr/bin/time -f 'TIME %e %M' "$target/crrt" hunt "$@" "${rules[@]}" --format jsonl -o /dev/null; } 2>&1 )
    hr+=("$(echo "$out" | sed -n 's/.*hunting (\([0-9]*\) events\/s).*/\1/p')")
    hw+=("$(echo "$out" | awk '/^TIME/ {print $2}')"); hm+=("$(echo "$out" | awk '/^TIME/ {print $3}')")
  done
  echo "$label: parse floor $(median "${fr[@]}") records/s, $(median "${fw[@]}") s, $(( $(median "${fm[@]}") / 1024 )) MiB"
  echo "$label: crrt hunt   $(median "${hr[@]}") events/s while hunting, $(median "${hw[@]}") s wall, $(( $(median "${hm[@]}") / 1024 )) MiB"
}
"$target/crrt" hunt "$data/evtx-attack-samples/Other" "${rules[@]}" -q -o /dev/null  # fill the rule cache
measure "1/4 corpus ($(du -sh "$dir/1" | cut -f1) x 7)" "$dir"/{1..7}
measure "full corpus ($(du -sh "$dir" | cut -f1))" "$dir"
