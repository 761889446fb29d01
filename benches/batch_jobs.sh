#!/usr/bin/env bash
# Batch throughput: images/minute of `dfa batch` with --jobs 1 vs --jobs 2 on the same script.
#
#   benches/batch_jobs.sh [N_ITEMS] [IMAGE]
#
# Uses target/release/dfa (build it first: cargo build --release), or $DFA_BIN. The script
# analyses N_ITEMS (default 12) copies of IMAGE (default tests/data/solvay-1927.png, face 1
# only) and prints the summary line of each run. Set RAYON_NUM_THREADS as you would in use;
# with --jobs 2 on a 2-core machine, RAYON_NUM_THREADS=1 avoids oversubscription.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-12}
IMAGE=$(realpath "${2:-tests/data/solvay-1927.png}")
BIN=${DFA_BIN:-${CARGO_TARGET_DIR:-target}/release/dfa}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for i in $(seq 1 "$N"); do
  printf '{"id": "b%03d", "image": "%s", "face": 1}\n' "$i" "$IMAGE"
done > "$WORK/script.jsonl"
echo "dfa batch: $N items of $(basename "$IMAGE"), RAYON_NUM_THREADS=$RAYON_NUM_THREADS, $(nproc) cores"
for jobs in 1 2; do
  start=$(date +%s.%N)
  "$BIN" batch "$WORK/script.jsonl" --out "$WORK/out-$jobs" --jobs "$jobs" > "$WORK/summary-$jobs.txt"
  end=$(date +%s.%N)
  ok=$(grep -E '^analysed' "$WORK/summary-$jobs.txt" | awk '{print $NF}')
  errors=$(grep -E '^errors' "$WORK/summary-$jobs.txt" | awk '{print $NF}')
  awk -v j="$jobs" -v n="$N" -v s="$start" -v e="$end" -v ok="$ok" -v err="$errors" \
    'BEGIN { t = e - s; printf "--jobs %d: %d items (%d ok, %d errors) in %.1f s = %.1f images/minute\n", j, n, ok, err, t, n * 60 / t }'
done
