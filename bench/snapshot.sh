#!/usr/bin/env bash
# Snapshot benchmark (run by hand, not in CI): 1M rows (env ROWS) of the `bench` dataset
# (reference/debezium/sql/bench_schema.sql's table, bench/lib.sh load_bench), on this machine, in one run:
#   1. the physical limit: COPY (SELECT * FROM ONLY bench) TO STDOUT (FORMAT binary) > /dev/null via psql
#   2. chunk strategies: planning + reading 10 chunks of 100k rows by ctid ranges vs primary-key ranges
#   3. pgseam standalone, snapshot.max.threads=$THREADS, into the tansu broker, schemaless JSON
# Reports rows/s, MB/s, CPU-seconds per million rows and peak RSS (/usr/bin/time -v), and
# appends them with the command to BENCHMARKS.md.
#
# usage: bench/snapshot.sh [THREADS=4]
# env:   PGSEAM_BROKER_BIN (tansu binary), CARGO_TARGET_DIR (default ./target), ROWS (rows of
#        `bench`, default 1000000), BENCH_BUILD=no (run the release binaries already built)
set -euo pipefail
THREADS=${1:-4}
. "$(dirname "$0")/lib.sh"
WORK=$(mktemp -d /tmp/pgseam-bench-snapshot.XXXX)
chmod 777 "$WORK"

bench_build -p pgseam -p pgseam-testkit
trap bench_stop_servers EXIT
pg_start "$WORK/pg"
broker_start "$WORK/broker"
pg_create_db bench
load_bench "${ROWS:-1000000}"
Q -c "VACUUM ANALYZE bench" -c "CHECKPOINT"
ROWS=$(Q -c "SELECT count(*) FROM bench")
HEAP_MB=$(Q -c "SELECT round(pg_relation_size('bench') / 1e6, 1)")

timed() { # label, command...: prints "label elapsed_s cpu_s rss_kb"
  local label=$1; shift
  /usr/bin/time -v -o "$WORK/time.txt" "$@" >/dev/null
  local wall cpu rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$WORK/time.txt")
  cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$WORK/time.txt")
  rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$WORK/time.txt")
  echo "$label $wall $cpu $rss"
}

# 1. The COPY limit (client side: psql; the server's CPU is not in cpu_s).
COPY_BYTES=$(Q -c "\\copy (SELECT * FROM ONLY bench) TO STDOUT WITH (FORMAT binary)" | wc -c)
read -r _ copy_wall copy_cpu copy_rss < <(timed copy sh -c "'$PSQL' -XAtq -h 127.0.0.1 -p $PG_port -U postgres -d bench -c \"\\\\copy (SELECT * FROM ONLY bench) TO '/dev/null' WITH (FORMAT binary)\"")

# 2. Chunk strategies, single session, 10 chunks of ROWS/10 rows.
CHUNK_ROWS=$((ROWS / 10))
ctid_sql=$(Q -c "SELECT string_agg(format('COPY (SELECT * FROM ONLY bench WHERE ctid >= ''(%s,0)''::tid AND ctid < ''(%s,0)''::tid) TO ''/dev/null'' (FORMAT binary);', b, b + per), ' ')
  FROM (SELECT (pg_relation_size('bench') / 8192 / 10 + 1) AS per) p, generate_series(0, pg_relation_size('bench') / 8192, pg_relation_size('bench') / 8192 / 10 + 1) b")
key_plan="SELECT id::text FROM (SELECT id, row_number() OVER (ORDER BY id) rn FROM ONLY bench) s WHERE rn % $CHUNK_ROWS = 0 ORDER BY rn"
t0=$(date +%s.%N); BOUNDS=$(Q -c "$key_plan" | paste -sd, ); t1=$(date +%s.%N)
key_plan_s=$(echo "$t1 - $t0" | bc)
key_sql=$(echo "0,$BOUNDS" | tr ',' '\n' | awk 'NR>1 {printf "COPY (SELECT * FROM ONLY bench WHERE id > %s AND id <= %s) TO '"'"'/dev/null'"'"' (FORMAT binary); ", prev, $1} {prev=$1}')
# Server-side COPY to a file needs superuser; the server writes /dev/null, so this measures the scan.
t0=$(date +%s.%N); Q -c "$ctid_sql" >/dev/null; t1=$(date +%s.%N); ctid_s=$(echo "$t1 - $t0" | bc)
t0=$(date +%s.%N); Q -c "$key_sql" >/dev/null; t1=$(date +%s.%N); key_s=$(echo "$t1 - $t0" | bc)

# 3. pgseam: snapshot only (stopped once streaming starts).
# (offsets flushed at the worker's default interval)
worker_props "$WORK/worker.properties" "offset.storage.file.filename=$WORK/offsets.dat" "offset.flush.interval.ms="
connector_props "$WORK/bench.properties" "table.include.list=public.bench" "snapshot.max.threads=$THREADS"
run_pgseam() {
  "$TARGET/release/pgseam" standalone "$WORK/worker.properties" "$WORK/bench.properties" >"$WORK/pgseam.log" 2>&1 &
  local pid=$!
  until grep -q "streaming started" "$WORK/pgseam.log"; do
    kill -0 $pid 2>/dev/null || { cat "$WORK/pgseam.log" >&2; exit 1; }
    sleep 0.2
  done
  kill -TERM $pid; wait $pid || true
}
export -f run_pgseam; export TARGET WORK
read -r _ pg_wall pg_cpu pg_rss < <(timed pgseam bash -c run_pgseam)
snap_s=$(grep -o 'seconds=[0-9.]*' "$WORK/pgseam.log" | tail -1 | cut -d= -f2)

report() { # label wall cpu rss
  awk -v l="$1" -v w="$2" -v c="$3" -v r="$4" -v rows="$ROWS" -v mb="$(echo "$COPY_BYTES / 1000000" | bc -l)" \
    'BEGIN { printf "| %s | %.2f | %.0f | %.1f | %.2f | %.0f |\n", l, w, rows / w, mb / w, c / (rows / 1e6), r / 1024 }'
}
{
  echo
  echo "## Snapshot, $(date -u +%Y-%m-%d) — $ROWS rows of \`bench\` (heap $HEAP_MB MB, binary COPY $(echo "$COPY_BYTES / 1000000" | bc) MB), $(nproc) cores"
  echo
  echo "Command: \`bench/snapshot.sh $THREADS\` (commit $(git -C "$REPO" rev-parse --short HEAD))"
  echo
  echo "| run | seconds | rows/s | MB/s (binary COPY bytes) | client CPU-s per 1M rows | peak RSS MB |"
  echo "|---|---|---|---|---|---|"
  report "psql COPY binary → /dev/null (limit)" "$copy_wall" "$copy_cpu" "$copy_rss"
  report "pgseam snapshot.max.threads=$THREADS → tansu (process, incl. start-up and drain)" "$pg_wall" "$pg_cpu" "$pg_rss"
  echo
  echo "pgseam's own snapshot phase: ${snap_s}s. Chunking, one session, 10 chunks of $((CHUNK_ROWS / 1000))k rows, server-side COPY to /dev/null:"
  echo "ctid ranges ${ctid_s}s (no planning query); key ranges ${key_s}s plus ${key_plan_s}s to plan the boundaries."
} | tee -a "$REPO/BENCHMARKS.md"
