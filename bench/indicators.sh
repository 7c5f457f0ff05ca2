#!/usr/bin/env bash
# Benchmark: the cost of indicators in a hunt. Generates 100,000 indicators
# (domains, IPv4 addresses, SHA-256 and MD5 hashes, URLs, file names and
# /24 blocks; a few of them values that occur in the corpus), then runs
# `crrt hunt` over the shared EVTX corpus with the SigmaHQ Windows rules,
# warm rule cache, in turn without indicators, with `--indicators` parsing
# the feed (no parsed feed cached), and with the parsed feed from the cache
# (every later hunt with the same feed), N times each (default 5), and
# prints the medians and their ratios. CRRT_BIN=PATH measures another build.
# Usage: [CRRT_BIN=PATH] [INSTRUCTIONS=1] bench/indicators.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
data=../shared/data
[ -d "$data/evtx-attack-samples" ] || { echo "needs $data (the shared corpus)" >&2; exit 2; }
if [ -z "${CRRT_BIN:-}" ]; then
  cargo build --release --quiet -p crrt
fi
bin=${CRRT_BIN:-${CARGO_TARGET_DIR:-target}/release/crrt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/indicators.txt" <<'PY'
import random, sys
random.seed(2022)
hexs = lambda n: "".join(random.choice("0123456789abcdef") for _ in range(n))
word = lambda: "".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(random.randint(5, 12)))
lines = []
lines += [f"{word()}.{word()}.{random.choice(['com','net','org','ru','info','xyz'])}" for _ in range(35000)]
lines += [f"{random.randint(1,223)}.{random.randint(0,255)}.{random.randint(0,255)}.{random.randint(1,254)}" for _ in range(25000)]
lines += [hexs(64) for _ in range(20000)]
lines += [hexs(32) for _ in range(10000)]
lines += [f"http://{word()}.{word()}.com/{word()}/{word()}.php" for _ in range(5000)]
lines += [f"filename:{word()}.exe" for _ in range(2500)]
lines += [f"{random.randint(1,223)}.{random.randint(0,255)}.{random.randint(0,255)}.0/24" for _ in range(2490)]
# Values the corpus holds, so the hunt has hits to report.
lines += ["filename:mimikatz.exe", "filename:psexesvc.exe", "127.0.0.1", "10.0.2.0/24",
          "filename:powershell.exe", "filename:rundll32.exe", "filename:procdump64.exe",
          "filename:wmic.exe", "filename:lsass.dmp", "filename:whoami.exe"]
lines = lines[:100000]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
print(f"{len(lines)} indicators generated", file=sys.stderr)
PY
cache="$work/cache"
args=(hunt "$data/evtx-attack-samples" --sigma "$data/sigma/rules/windows" --format jsonl --rule-cache "$cache")
"$bin" "${args[@]}" --output /dev/null --quiet   # warm the rule cache
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
plain=() with=() cold=() rss_plain=() rss_with=() rss_cold=() cpu_plain=() cpu_with=() cpu_cold=()
cpu() { echo "$1" | awk '/^TIME/ {print $4 + $5}'; }
for _ in $(seq "$runs"); do
  out=$( { /usr/bin/time -f 'TIME %e %M %U %S' "$bin" "${args[@]}" --output /dev/null --quiet; } 2>&1 )
  plain+=("$(echo "$out" | awk '/^TIME/ {print $2}')"); rss_plain+=("$(echo "$out" | awk '/^TIME/ {print $3}')"); cpu_plain+=("$(cpu "$out")")
  # The feed parsed again (no parsed feed in the cache; rules still cached).
  rm -rf "$cache/indicators"
  out=$( { /usr/bin/time -f 'TIME %e %M %U %S' "$bin" "${args[@]}" --indicators "$work/indicators.txt" --output /dev/null --quiet; } 2>&1 )
  cold+=("$(echo "$out" | awk '/^TIME/ {print $2}')"); rss_cold+=("$(echo "$out" | awk '/^TIME/ {print $3}')"); cpu_cold+=("$(cpu "$out")")
  # The feed from the cache, as in every later hunt with it.
  out=$( { /usr/bin/time -f 'TIME %e %M %U %S' "$bin" "${args[@]}" --indicators "$work/indicators.txt" --output /dev/null --quiet; } 2>&1 )
  with+=("$(echo "$out" | awk '/^TIME/ {print $2}')"); rss_with+=("$(echo "$out" | awk '/^TIME/ {print $3}')"); cpu_with+=("$(cpu "$out")")
done
# Counted in a run of its own: every timed run writes to /dev/null alike.
"$bin" "${args[@]}" --indicators "$work/indicators.txt" --output "$work/with.jsonl" --quiet
hits=$(grep -c '"rule_id":"indicator:' "$work/with.jsonl" || true)
p=$(median "${plain[@]}"); w=$(median "${with[@]}"); c=$(median "${cold[@]}")
echo "runs: $runs; indicator findings: $hits"
echo "without indicators:         wall $p s (runs: ${plain[*]}), CPU $(median "${cpu_plain[@]}") s, peak $(( $(median "${rss_plain[@]}") / 1024 )) MiB"
echo "with 100,000, feed parsed:  wall $c s (runs: ${cold[*]}), CPU $(median "${cpu_cold[@]}") s, peak $(( $(median "${rss_cold[@]}") / 1024 )) MiB"
echo "with 100,000, feed cached:  wall $w s (runs: ${with[*]}), CPU $(median "${cpu_with[@]}") s, peak $(( $(median "${rss_with[@]}") / 1024 )) MiB"
python3 -c "print(f'cost of the indicators: {($c / $p - 1) * 100:+.1f}% wall time parsing the feed, {($w / $p - 1) * 100:+.1f}% with the parsed feed cached')"
# Wall time on a shared 2-core machine moves by tens of percent between
# runs of the same binary; instructions executed do not. INSTRUCTIONS=1
# counts them (valgrind's callgrind, about a minute per run) without and
# with the cached feed.
if [ "${INSTRUCTIONS:-0}" = 1 ]; then
  count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "${args[@]}" "$@" --output /dev/null --quiet 2>&1 | awk '/Collected/ {print $4}'; }
  i_plain=$(count); i_with=$(count --indicators "$work/indicators.txt")
  python3 -c "print(f'instructions: without {$i_plain:,}, with 100,000 cached {$i_with:,}: {($i_with / $i_plain - 1) * 100:+.1f}%')"
fi
