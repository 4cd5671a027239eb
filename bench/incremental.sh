#!/usr/bin/env bash
# Incremental snapshot benchmark (run by hand, not in CI): 1M rows of the `bench` dataset
# (../shared/reference/debezium/sql/bench_schema.sql) on this machine, in one run:
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
# env:   PGSEAM_BROKER_BIN (tansu binary), CARGO_TARGET_DIR (default ./target)
set -euo pipefail
CHUNK=${1:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
REF=${REF:-/work/shared/reference/debezium/sql}
PSQL=/usr/lib/postgresql/15/bin/psql
WORK=$(mktemp -d /tmp/pgseam-bench-incremental.XXXX)
chmod 777 "$WORK"
export PGPASSWORD=postgres

cargo build --release -p pgseam -p pgseam-testkit -p pgseam-integration-tests --bins \
  --manifest-path "$ROOT/Cargo.toml" >&2
DEV="$TARGET/release/pgseam-dev"
BENCH="$TARGET/release/pgseam-bench"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$DEV" postgres stop --dir "$WORK/pg" >/dev/null 2>&1 || true
  "$DEV" broker stop --dir "$WORK/broker" >/dev/null 2>&1 || true
}
trap cleanup EXIT
eval "$("$DEV" postgres start --dir "$WORK/pg" | sed 's/^/PG_/')"
q() { "$PSQL" -XAtq -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_port" -U postgres "$@"; }
q -d postgres -c "CREATE DATABASE bench"
q -d bench -f "$REF/bench_schema.sql" >/dev/null
q -d bench -c "CREATE TABLE dbz_signal (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048));
               CREATE TABLE lat0 (id bigserial PRIMARY KEY, at timestamptz DEFAULT now());
               CREATE TABLE lat (id bigserial PRIMARY KEY, at timestamptz DEFAULT now());"
ROWS=$(q -d bench -c "SELECT count(*) FROM bench")
now() { date +%s.%N; }

write_config() { # name sink mode
  cat > "$WORK/$1.worker" <<PROPS
bootstrap.servers=$BROKER_bootstrap
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
offset.storage.file.filename=$WORK/$1.offsets
offset.flush.interval.ms=100
pgseam.sink=$2
listeners=http://127.0.0.1:0
PROPS
  cat > "$WORK/$1.connector" <<PROPS
name=$1
connector.class=io.debezium.connector.postgresql.PostgresConnector
database.hostname=127.0.0.1
database.port=$PG_port
database.user=postgres
database.password=postgres
database.dbname=bench
topic.prefix=$1
plugin.name=pgoutput
slot.name=$1
publication.name=$1
publication.autocreate.mode=all_tables
table.include.list=public.bench,public.lat0,public.lat
decimal.handling.mode=string
snapshot.mode=$3
snapshot.max.threads=1
signal.data.collection=public.dbz_signal
incremental.snapshot.chunk.size=$CHUNK
PROPS
}
start_pgseam() { # name
  "$TARGET/release/pgseam" standalone "$WORK/$1.worker" "$WORK/$1.connector" >"$WORK/$1.log" 2>&1 &
  PGSEAM_PID=$!
  PIDS+=("$PGSEAM_PID")
}
wait_log() { # name text
  until grep -q "$2" "$WORK/$1.log"; do
    kill -0 "$PGSEAM_PID" 2>/dev/null || { cat "$WORK/$1.log" >&2; exit 1; }
    sleep 0.05
  done
}
stop_pgseam() { kill -TERM "$PGSEAM_PID"; wait "$PGSEAM_PID" || true; }
# Writers: updates of random `bench` rows (the snapshot's table) and inserts into table $1,
# ~150 transactions/s each, until the flag file goes.
writers() {
  touch "$WORK/writing"
  ( while [ -e "$WORK/writing" ]; do
      # (a variable: `WHERE id = <expression with random()>` would scan the table)
      q -d bench -c "DO \$\$ DECLARE k bigint; BEGIN FOR i IN 1..100 LOOP
        k := 1 + (random() * 999999)::int;
        UPDATE bench SET a = a + 1 WHERE id = k; COMMIT;
        INSERT INTO $1 DEFAULT VALUES; COMMIT; PERFORM pg_sleep(0.005); END LOOP; END \$\$;"
    done ) &
  WRITER_PID=$!; PIDS+=("$WRITER_PID")
}
stop_writers() { rm -f "$WORK/writing"; wait "$WRITER_PID" || true; }
latency() { # topic out: reads the topic as records arrive, until 5 s without one
  "$BENCH" latency-live --bootstrap "$BROKER_bootstrap" --topic "$1" --expect 1000000000 \
    --idle-stop-s 5 --timeout-s 900 > "$2" &
  LAT_PID=$!; PIDS+=("$LAT_PID")
  until grep -q ready "$2"; do sleep 0.05; done
}

# 1. Initial snapshot (no writers), into tansu.
eval "$("$DEV" broker start --dir "$WORK/broker" | sed 's/^/BROKER_/')"
write_config initial kafka initial
t0=$(now); start_pgseam initial; wait_log initial "streaming started"; t1=$(now); stop_pgseam
initial_s=$(echo "$t1 - $t0" | bc)

# 2. The windows' SQL alone (see bench/incremental-sql.sh).
"$ROOT/bench/incremental-sql.sh" "$PG_port" "$CHUNK" > "$WORK/sql.txt"
sql_s=$(awk -F'seconds=' '/part=both/ {print $2}' "$WORK/sql.txt")
WINDOWS=$(grep -o 'part=both windows=[0-9]*' "$WORK/sql.txt" | cut -d= -f3)

# 3 + 4. Incremental snapshots with writers; latency of `lat` with and without a snapshot.
incremental() { # name sink: the snapshot's seconds go to $WORK/name.seconds
  write_config "$1" "$2" no_data
  start_pgseam "$1"; wait_log "$1" "streaming started"
  if [ "$2" = kafka ]; then
    # Streaming alone for 15 s: the baseline latency.
    latency "$1.public.lat0" "$WORK/$1.lat0"
    writers lat0; sleep 15; stop_writers; wait "$LAT_PID" || true
    latency "$1.public.lat" "$WORK/$1.lat"
  fi
  writers lat
  sleep 2
  local s0; s0=$(now)
  q -d bench -c "INSERT INTO dbz_signal VALUES ('$1', 'execute-snapshot', '{\"data-collections\": [\"public.bench\"]}')"
  wait_log "$1" "the incremental snapshot is complete"
  local s1; s1=$(now)
  stop_writers
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
  echo "Command: \`bench/incremental.sh $CHUNK\` (commit $(git -C "$ROOT" rev-parse --short HEAD)); writers: ~150 updates/s of random \`bench\` rows and ~150 inserts/s during runs 3"
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
} | tee -a "$ROOT/BENCHMARKS.md"
