#!/usr/bin/env bash
# Benchmark: crrt hunt over the shared EVTX corpus with the SigmaHQ Windows,
# emerging-threats and threat-hunting rules. Prints, as medians of N runs
# (default 5): wall time and peak memory with a cold rule cache (every rule
# file parsed) and a warm one (rules from the cache), the rule-loading and
# hunting times the summary reports, and the parse-only floor on the same
# EVTX files. Usage: bench/hunt.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
data=../shared/data
[ -d "$data/evtx-attack-samples" ] || { echo "needs $data (the shared corpus)" >&2; exit 2; }
cargo build --release --quiet -p crrt
cargo build --release --quiet -p crrt-hunt --example parse_floor
target=${CARGO_TARGET_DIR:-target}/release
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
args=(hunt "$data/evtx-attack-samples"
  --sigma "$data/sigma/rules/windows" --sigma "$data/sigma/rules-emerging-threats"
  --sigma "$data/sigma/rules-threat-hunting" --format jsonl --output /dev/null)
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() { # mode: cold | warm
  local walls=() rss=() load=() hunt=() rate=()
  for _ in $(seq "$runs"); do
    [ "$1" = cold ] && rm -rf "${cache:?}"/*
    out=$( { /usr/bin/time -f 'TIME %e %M' "$target/crrt" "${args[@]}" --rule-cache "$cache"; } 2>&1 )
    walls+=("$(echo "$out" | awk '/^TIME/ {print $2}')"); rss+=("$(echo "$out" | awk '/^TIME/ {print $3}')")
    load+=("$(echo "$out" | sed -n 's/.*time *\([0-9.]*\) s loading rules.*/\1/p')")
    hunt+=("$(echo "$out" | sed -n 's/.*rules, \([0-9.]*\) s hunting.*/\1/p')")
    rate+=("$(echo "$out" | sed -n 's/.*hunting (\([0-9]*\) events\/s).*/\1/p')")
  done
  echo "$1 rule cache: wall $(median "${walls[@]}") s (runs: ${walls[*]}), peak $(( $(median "${rss[@]}") / 1024 )) MiB," \
    "loading rules $(median "${load[@]}") s, hunting $(median "${hunt[@]}") s ($(median "${rate[@]}") events/s)"
}
echo "runs: $runs"
run cold
run warm
floor=()
for _ in $(seq "$runs"); do
  floor+=("$("$target/examples/parse_floor" "$data/evtx-attack-samples" | sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p')")
done
echo "parse-only floor (EVTX records to JSON): $(median "${floor[@]}") records/s"
"$target/crrt" "${args[@]}" --rule-cache "$cache" 2>&1 | grep -E "  (events|rules|findings) "
