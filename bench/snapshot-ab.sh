#!/usr/bin/env bash
# bench/snapshot-ab.sh: two pgseam builds against each other on the initial snapshot, null sink,
# interleaved (A, B, A, B, ...) on the same PostgreSQL, so that a change's effect shows against
# the machine's drift. Run by hand (never in CI); results go to BENCHMARKS.md with the command.
#
#   bench/snapshot-ab.sh OLD_BIN NEW_BIN [--reps N] [--rows N] [--datasets bench,wide,toast]
#                        [--threads N]
#
#   --rows N      rows of `bench` (default 1000000); `wide` gets N/5, `toast` N/50, as in run.sh
#   --threads N   snapshot.max.threads (default 1: one reader, the per-reader figure)
#
# Prints one line per run (rows/s as pgseam logs it for the table, wall seconds, CPU-seconds
# user + system of the pgseam process, peak RSS) and the medians per build and dataset.
# Datasets are bench/lib.sh's, as bench/run.sh loads them (the same tables).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,13p' "$0"; exit 2; }
OLD=$1; NEW=$2; shift 2
REPS=5; ROWS=1000000; DATASETS=bench,wide,toast; THREADS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS=$2; shift 2;;
    --rows) ROWS=$2; shift 2;;
    --datasets) DATASETS=$2; shift 2;;
    --threads) THREADS=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
. "$(dirname "$0")/lib.sh"
bench_require "$DEV"
WORK=$(mktemp -d /tmp/pgseam-snapshot-ab.XXXXXX); chmod 755 "$WORK"
trap 'pg_stop; rm -rf "$WORK"' EXIT
pg_start "$WORK/pg" 'shared_buffers = 512MB' 'max_wal_size = 8GB'
pg_create_db bench
for d in ${DATASETS//,/ }; do
  case "$d" in
    bench) load_bench "$ROWS";;
    wide) load_wide $((ROWS / 5));;
    toast) load_toast $((ROWS / 50));;
    *) echo "unknown dataset $d" >&2; exit 2;;
  esac
  Q -c "VACUUM ANALYZE $d" >/dev/null
done
Q -c "CHECKPOINT" >/dev/null

run=0
one() {   # BIN TABLE -> "rows_per_second wall cpu rss_mb"
  run=$((run + 1)); local d=$WORK/run$run
  mkdir -p "$d"
  worker_props "$d/worker.properties" "offset.storage.file.filename=$d/offsets.json" "pgseam.sink=null"
  connector_props "$d/connector.properties" "name=ab" "topic.prefix=ab" "slot.name=ab_$run" \
    "table.include.list=public.$2" "snapshot.mode=initial_only" "snapshot.max.threads=$THREADS"
  /usr/bin/time -f "%e %U %S %M" -o "$d/time" "$1" standalone "$d/worker.properties" "$d/connector.properties" 2>"$d/log" \
    || { echo "pgseam failed: $(tail -3 "$d/log")" >&2; exit 1; }
  local rate; rate=$(grep -o 'rows_per_second=[0-9]*' "$d/log" | tail -1 | cut -d= -f2)
  awk -v r="$rate" '{printf "%s %s %.2f %d\n", r, $1, $2 + $3, $4 / 1024}' "$d/time"
  rm -rf "$d"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "# dataset build rows_per_second wall_s cpu_s rss_mb   (A=$OLD B=$NEW, $REPS reps, snapshot.max.threads=$THREADS)"
for d in ${DATASETS//,/ }; do
  : > "$WORK/A.$d"; : > "$WORK/B.$d"
  for _ in $(seq 1 "$REPS"); do
    line=$(one "$OLD" "$d"); echo "$d A $line"; echo "$line" >> "$WORK/A.$d"
    line=$(one "$NEW" "$d"); echo "$d B $line"; echo "$line" >> "$WORK/B.$d"
  done
  for b in A B; do
    echo "$d $b median: rows/s $(cut -d' ' -f1 "$WORK/$b.$d" | median), CPU-s $(cut -d' ' -f3 "$WORK/$b.$d" | median), RSS MB $(cut -d' ' -f4 "$WORK/$b.$d" | median)"
  done
done
