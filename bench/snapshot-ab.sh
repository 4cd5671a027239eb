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
# Datasets are loaded with bench/run.sh's definitions (the same tables).
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
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
DEV=$TARGET/release/pgseam-dev
[ -x "$DEV" ] || { echo "build first: cargo build --release -p pgseam-testkit" >&2; exit 1; }
WORK=$(mktemp -d /tmp/pgseam-snapshot-ab.XXXXXX); chmod 755 "$WORK"
trap '"$DEV" postgres stop --dir "$WORK/pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
eval "$("$DEV" postgres start --dir "$WORK/pg" --conf 'shared_buffers = 512MB' --conf 'max_wal_size = 8GB' | sed 's/^/PG_/')"
export PGPASSWORD=postgres
Q() { psql -X -q -At -h 127.0.0.1 -p "$PG_port" -U postgres -v ON_ERROR_STOP=1 -d bench "$@"; }
psql -X -q -h 127.0.0.1 -p "$PG_port" -U postgres -d postgres -c "CREATE DATABASE bench" >/dev/null
# The datasets exactly as bench/run.sh defines them.
eval "$(sed -n '/^wide_ddl()/,/^}/p' "$HERE/run.sh")"
for d in ${DATASETS//,/ }; do
  case "$d" in
    bench) Q -c "CREATE TABLE bench (id bigint PRIMARY KEY, a int, b int, c int, txt text, ts timestamptz, amount numeric(12,2))" \
             -c "INSERT INTO bench SELECT g, g % 1000, g % 7, (g * 31) % 100000, md5(g::text) || substr(md5((g + 1)::text), 1, 18),
                   timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', (g % 100000) / 100.0 FROM generate_series(1, $ROWS) g";;
    wide) Q -c "$(wide_ddl $((ROWS / 5)))";;
    toast) Q -c "CREATE TABLE toast (id bigint PRIMARY KEY, a int, body text)" \
             -c "ALTER TABLE toast ALTER COLUMN body SET STORAGE EXTERNAL" \
             -c "INSERT INTO toast SELECT g, g % 1000, repeat(md5(g::text), 625) FROM generate_series(1, $((ROWS / 50))) g";;
    *) echo "unknown dataset $d" >&2; exit 2;;
  esac
  Q -c "VACUUM ANALYZE $d" >/dev/null
done
Q -c "CHECKPOINT" >/dev/null

run=0
one() {   # BIN TABLE -> "rows_per_second wall cpu rss_mb"
  run=$((run + 1)); local d=$WORK/run$run
  mkdir -p "$d"
  printf '%s\n' "key.converter.schemas.enable=false" "value.converter.schemas.enable=false" \
    "offset.storage.file.filename=$d/offsets.json" "offset.flush.interval.ms=100" "pgseam.sink=null" \
    "listeners=http://127.0.0.1:0" > "$d/worker.properties"
  printf '%s\n' "name=ab" "connector.class=io.debezium.connector.postgresql.PostgresConnector" \
    "database.hostname=127.0.0.1" "database.port=$PG_port" "database.user=postgres" "database.password=postgres" \
    "database.dbname=bench" "topic.prefix=ab" "plugin.name=pgoutput" "slot.name=ab_$run" \
    "table.include.list=public.$2" "snapshot.mode=initial_only" "decimal.handling.mode=string" \
    "snapshot.max.threads=$THREADS" > "$d/connector.properties"
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
