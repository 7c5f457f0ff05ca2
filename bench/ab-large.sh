#!/usr/bin/env bash
# Benchmark: two or more `crrt` binaries on the 1 GB corpus that
# bench/large.sh builds (run it first), runs interleaved so the machine's
# noise falls on all alike, each binary with its own warm rule cache.
# Prints per binary, sorted by throughput, each run's events/s while
# hunting, wall, user and system CPU (s) and peak RSS (KiB), then the md5
# of each binary's last JSONL (identical findings give identical files).
# Usage: bench/ab-large.sh N BINARY BINARY...
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:?usage: bench/ab-large.sh N BINARY BINARY...}; shift
data=../shared/data
dir=${CRRT_BENCH_DIR:-/tmp/crrt-large}
[ -d "$dir" ] || { echo "no corpus in $dir: run bench/large.sh first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rules=(--sigma "$data/sigma/rules/windows" --sigma "$data/sigma/rules-emerging-threats"
  --sigma "$data/sigma/rules-threat-hunting")
n=0
for bin in "$@"; do
  n=$((n + 1))
  "$bin" hunt "$data/evtx-attack-samples/Other" "${rules[@]}" --rule-cache "$work/cache$n" -q -o /dev/null
done
for _ in $(seq "$runs"); do
  n=0
  for bin in "$@"; do
    n=$((n + 1))
    out=$( { /usr/bin/time -f "TIME %e %U %S %M" "$bin" hunt "$dir" "${rules[@]}" \
      --rule-cache "$work/cache$n" -f jsonl -o "$work/out$n.jsonl"; } 2>&1 )
    rate=$(echo "$out" | sed -n 's/.*hunting (\([0-9]*\) events\/s).*/\1/p')
    echo "$n $rate $(echo "$out" | awk '/^TIME/ {print $2, $3, $4, $5}')"
  done
done | sort -k1,1n -k2,2n > "$work/runs"
n=0
for bin in "$@"; do
  n=$((n + 1))
  echo "$bin (events/s wall user sys KiB)"
  awk -v n=$n '$1 == n {print "  " $2, $3, $4, $5, $6}' "$work/runs"
  echo "  jsonl md5 $(md5sum < "$work/out$n.jsonl" | cut -d' ' -f1)"
done
