#!/usr/bin/env bash
# Benchmark: crrt hunt --yara with the shared public rule set (signature-base,
# 741 files) over (1) the shared test corpus, 51 MiB in ~4,900 files of every
# kind (EVTX, YAML, JSON, YARA text), and (2) this machine's /usr/bin (ELF
# executables; its size is printed, it differs between machines). Prints, as
# medians of N runs (default 5): rule compile time, scan time and MiB/s
# (scan only, as the summary reports it), wall time and peak memory.
# Usage: bench/yara.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
data=../shared/data
rules=$data/yara/signature-base/yara
[ -d "$rules" ] || { echo "needs $rules (the shared corpus)" >&2; exit 2; }
cargo build --release --quiet -p crrt
target=${CARGO_TARGET_DIR:-target}/release
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
bench() { # label path
  local walls=() rss=() load=() scan=() rate=() files=""
  for _ in $(seq "$runs"); do
    out=$( { /usr/bin/time -f 'TIME %e %M' "$target/crrt" hunt "$2" --yara "$rules" \
      --format jsonl --output /dev/null; } 2>&1 )
    walls+=("$(echo "$out" | awk '/^TIME/ {print $2}')"); rss+=("$(echo "$out" | awk '/^TIME/ {print $3}')")
    load+=("$(echo "$out" | sed -n 's/.*time *\([0-9.]*\) s loading rules.*/\1/p')")
    scan+=("$(echo "$out" | sed -n 's/.*rules, \([0-9.]*\) s hunting.*/\1/p')")
    rate+=("$(echo "$out" | sed -n 's/.*YARA \([0-9.]*\) MiB\/s.*/\1/p')")
    files=$(echo "$out" | sed -n 's/.*files; \(.*\)$/\1/p' | head -1)
  done
  echo "$1 ($files): compile $(median "${load[@]}") s, scan $(median "${scan[@]}") s" \
    "= $(median "${rate[@]}") MiB/s (runs: ${rate[*]}), wall $(median "${walls[@]}") s," \
    "peak $(( $(median "${rss[@]}") / 1024 )) MiB"
}
echo "runs: $runs, $(nproc) cores"
bench "shared corpus" "$data"
bench "/usr/bin" /usr/bin
