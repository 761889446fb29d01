#!/usr/bin/env bash
# End-to-end `dfa explain` latency (p50, max) and peak RSS on the shipped samples with the
# embedded default. Usage: benches/explain.sh [RUNS]   (run on a quiet machine)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
cargo build --release --quiet
bin=target/release/dfa
times=(); rss=0
for i in $(seq 1 "$runs"); do
  for s in assets/samples/fake-1.png assets/samples/real-1.png assets/samples/fake-2.png; do
    out=$( { /usr/bin/time -f "%e %M" "$bin" explain "$s" --json >/dev/null; } 2>&1 | tail -1)
    times+=("${out% *}"); r=${out#* }; (( r > rss )) && rss=$r
  done
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
n=${#times[@]}
p50=$(echo "$sorted" | sed -n "$(( (n + 1) / 2 ))p"); max=$(echo "$sorted" | tail -1)
echo "explain: $n runs, p50 ${p50}s, max ${max}s, peak RSS $((rss / 1024)) MB (RAYON_NUM_THREADS=$RAYON_NUM_THREADS)"
