#!/usr/bin/env bash
# Benchmark: two or more `crrt` binaries (e.g. one built from an older
# commit into another target folder) on the shared EVTX corpus with the
# SigmaHQ Windows, emerging-threats and threat-hunting rules, each with its
# own warm rule cache, runs interleaved so the machine's noise falls on all
# alike. Prints per binary the sorted wall times and peak RSS of N hunts
# (default 9) and the time its summary gives for loading the rules alone
# (over an empty folder, 3 runs).
# INSTRUCTIONS=1 also counts the instructions of one hunt per binary.
# Usage: [INSTRUCTIONS=1] bench/ab.sh N BINARY BINARY...
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:?usage: bench/ab.sh N BINARY BINARY...}; shift
data=../shared/data
[ -d "$data/evtx-attack-samples" ] || { echo "needs $data (the shared corpus)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/empty"
rules=(--sigma "$data/sigma/rules/windows" --sigma "$data/sigma/rules-emerging-threats"
  --sigma "$data/sigma/rules-threat-hunting" -f jsonl -o /dev/null)
n=0
for bin in "$@"; do n=$((n + 1)); "$bin" hunt "$data/evtx-attack-samples" "${rules[@]}" --rule-cache "$work/cache$n" 2>/dev/null; done
for _ in $(seq "$runs"); do
  n=0
  for bin in "$@"; do
    n=$((n + 1))
    /usr/bin/time -f "$n %e %M" "$bin" hunt "$data/evtx-attack-samples" "${rules[@]}" --rule-cache "$work/cache$n" 2>&1 | tail -1
  done
done > "$work/times"
n=0
for bin in "$@"; do
  n=$((n + 1))
  walls=$(awk -v n=$n '$1 == n {print $2}' "$work/times" | sort -g | tr '\n' ' ')
  rss=$(awk -v n=$n '$1 == n {print int($3 / 1024)}' "$work/times" | sort -g | tr '\n' ' ')
  load=$(for _ in 1 2 3; do "$bin" hunt "$work/empty" "${rules[@]}" --rule-cache "$work/cache$n" 2>&1 |
    sed -n 's/.*time *\([0-9.]*\) s loading rules.*/\1/p'; done | sort -g | tr '\n' ' ')
  echo "$bin"
  echo "  hunt wall (s): $walls"
  echo "  peak (MiB):    $rss"
  echo "  rules only, loading (s): $load"
  # Wall time here moves by tens of percent between runs of one binary;
  # the instructions a hunt executes do not (valgrind, ~1 min per binary).
  if [ "${INSTRUCTIONS:-0}" = 1 ]; then
    echo "  instructions: $(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" hunt \
      "$data/evtx-attack-samples" "${rules[@]}" --rule-cache "$work/cache$n" 2>&1 | awk '/Collected/ {print $4}')"
  fi
done
