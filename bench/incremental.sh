#!/usr/bin/env bash
# Incremental snapshot benchmark (run by hand, not in CI): 1M rows (env ROWS) of the `bench`
# dataset (reference/debezium/sql/bench_schema.sql's table, bench/lib.sh load_bench) on this
# machine, in one run:
#   1. initial: pgseam's initial snapshot of `bench` (snapshot.max.threads=1), into tansu;
#      seconds from start to "streaming started".
#   2. sql: the SQL of every incremental window alone (key boundary query + COPY of the range
#      to /dev/null, one psql session, windows of $CHUNK keys): what the reads cost the server.
#   3. incremental/null and incremental/broker: `snapshot.mode=no_data`, an `execute-snapshot`
#      signal for `bench` while writers update random rows of `bench` and insert into `lat` at a
#      steady rate; seconds from the signal to "the incremental snapshot is complete", with the
#      null sink (encoded, dropped) and with tansu.
#   4. latency: commit → consumer latency of the `lat` inserts (pgseam-bench latency-live), with
#      no snapshot running and during the incremental snapshot into tansu.
# Appends the results with the command to BENCHMARKS.md.
#
# usage: bench/incremental.sh [CHUNK=1024]
# env:   PGSEAM_BROKER_BIN (tansu binary), CARGO_TARGET_DIR (default ./target), ROWS (rows of
#        `bench`, default 1000000), BENCH_BUILD=no (run the release binaries already built)
set -euo pipefail
CHUNK=${1:-1024}
. "$(dirname "$0")/lib.sh"
WORK=$(mktemp -d /tmp/pgseam-bench-incremental.XXXX)
chmod 777 "$WORK"

bench_build -p pgseam -p pgseam-testkit -p pgseam-integration-tests --bins
PGSEAM="$TARGET/release/pgseam"
BENCH="$TARGET/release/pgseam-bench"
trap bench_stop_servers EXIT
pg_start "$WORK/pg"
pg_create_db bench
load_bench "${ROWS:-1000000}"
Q -c "VACUUM ANALYZE bench" -c "CHECKPOINT"
signal_tables
ROWS=$(Q -c "SELECT count(*) FROM bench")

write_config() { # name sink mode
  worker_props "$WORK/$1.worker" "offset.storage.file.filename=$WORK/$1.offsets" "pgseam.sink=$2"
  connector_props "$WORK/$1.connector" "name=$1" "topic.prefix=$1" "slot.name=$1" "publication.name=$1" \
    "publication.autocreate.mode=all_tables" "table.include.list=public.bench,public.lat0,public.lat" \
    "snapshot.mode=$3" "snapshot.max.threads=1" "signal.data.collection=public.dbz_signal" \
    "incremental.snapshot.chunk.size=$CHUNK"
}
# Writers: updates of random `bench` rows (the snapshot's table) and inserts into table $1,
# ~150 transactions/s each, until the flag file goes.
update_writers() {
  touch "$WORK/writing"
  ( while [ -e "$WORK/writing" ]; do
      # (a variable: `WHERE id = <expression with random()>` would scan the table)
      Q -c "DO \$\$ DECLARE k bigint; BEGIN FOR i IN 1..100 LOOP
        k := 1 + (random() * $((ROWS - 1)))::int;
        UPDATE bench SET a = a + 1 WHERE id = k; COMMIT;
        INSERT INTO $1 DEFAULT VALUES; COMMIT; PERFORM pg_sleep(0.005); END LOOP; END \$\$;"
    done ) &
  WRITER_PID=$!; PIDS+=("$WRITER_PID")
}
stop_update_writers() { rm -f "$WORK/writing"; wait "$WRITER_PID" || true; }

# 1. Initial snapshot (no writers), into tansu.
broker_start "$WORK/broker"
write_config initial kafka initial
t0=$(now); pgseam_start_named initial; wait_log initial "streaming started"; t1=$(now); stop_pgseam
initial_s=$(echo "$t1 - $t0" | bc)

# 2. The windows' SQL alone (see bench/incremental-sql.sh).
"$BENCH_DIR/incremental-sql.sh" "$PG_port" "$CHUNK" > "$WORK/sql.txt"
sql_s=$(awk -F'seconds=' '/part=both/ {print $2}' "$WORK/sql.txt")
WINDOWS=$(grep -o 'part=both windows=[0-9]*' "$WORK/sql.txt" | cut -d= -f3)

# 3 + 4. Incremental snapshots with writers; latency of `lat` with and without a snapshot.
incremental() { # name sink: the snapshot's seconds go to $WORK/name.seconds
  write_config "$1" "$2" no_data
  pgseam_start_named "$1"; wait_log "$1" "streaming started"
  if [ "$2" = kafka ]; then
    # Streaming alone for 15 s: the baseline latency.
    latency_reader "$1.public.lat0" "$WORK/$1.lat0" 900
    update_writers lat0; sleep 15; stop_update_writers; wait "$LAT_PID" || true
    latency_reader "$1.public.lat" "$WORK/$1.lat" 900
  fi
  update_writers lat
  sleep 2
  local s0; s0=$(now)
  Q -c "INSERT INTO dbz_signal VALUES ('$1', 'execute-snapshot', '{\"data-collections\": [\"public.bench\"]}')"
  wait_log "$1" "the incremental snapshot is complete"
  local s1; s1=$(now)
  stop_update_writers
  if [ "$2" = kafka ]; then wait "$LAT_PID" || true; fi
  stop_pgseam
  echo "$s1 - $s0" | bc > "$WORK/$1.seconds"
}
incremental incnull null; null_s=$(cat "$WORK/incnull.seconds")
incremental incbroker kafka; broker_s=$(cat "$WORK/incbroker.seconds")
{
  echo
  echo "## Incremental snapshot, $(date -u +%Y-%m-%d) — $ROWS rows of \`bench\`, windows of $CHUNK keys, $(nproc) cores"
  echo
  echo "Command: \`bench/incremental.sh $CHUNK\` (commit $(git -C "$REPO" rev-parse --short HEAD)); writers: ~150 updates/s of random \`bench\` rows and ~150 inserts/s during runs 3"
  echo
  echo "| run | seconds | rows/s |"
  echo "|---|---|---|"
  awk -v s="$initial_s" -v r="$ROWS" 'BEGIN { printf "| initial snapshot → tansu, no writers (start to streaming) | %.2f | %.0f |\n", s, r / s }'
  awk -v s="$sql_s" -v r="$ROWS" -v w="$WINDOWS" 'BEGIN { printf "| the %d windows'"'"' SQL alone (watermarks, boundary query, COPY; one psql session, no writers) | %.2f | %.0f |\n", w, s, r / s }'
  awk -v s="$null_s" -v r="$ROWS" 'BEGIN { printf "| incremental → null sink, writers running (signal to complete) | %.2f | %.0f |\n", s, r / s }'
  awk -v s="$broker_s" -v r="$ROWS" 'BEGIN { printf "| incremental → tansu, writers running (signal to complete) | %.2f | %.0f |\n", s, r / s }'
  echo
  echo "Server side (bench/incremental-sql.sh): \`$(tr '\n' ' ' < "$WORK/sql.txt")\`"
  echo
  echo "Commit → consumer latency (pgseam-bench latency-live) of ~150 inserts/s, tansu run:"
  echo "- streaming alone (15 s, \`lat0\`): \`$(grep live_ "$WORK/incbroker.lat0" | head -1)\`"
  echo "- during the incremental snapshot (\`lat\`): \`$(grep live_ "$WORK/incbroker.lat" | head -1)\`"
} | tee -a "$REPO/BENCHMARKS.md"
