#!/usr/bin/env bash
# Two pgseam builds' incremental snapshots of the 1M-row `bench` table, interleaved in one run
# (run by hand): A, B, A, B, … on one PostgreSQL, null sink, `snapshot.mode=no_data`, with the
# writers of bench/incremental-kill.sh (insert + update + delete of `bench` + an insert into
# `lat`, each its own transaction) running throughout. Prints seconds from the signal to "the
# incremental snapshot is complete" per run.
#
# usage: bench/incremental-ab.sh BIN_A BIN_B [--reps 2] [--chunk 1024] [--fsync on|off]
# env:   CARGO_TARGET_DIR (for pgseam-dev; default ./target), PGSEAM_BROKER_BIN (tansu)
set -euo pipefail
A=$1 B=$2; shift 2
REPS=2 CHUNK=1024 FSYNC=on
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS=$2;; --chunk) CHUNK=$2;; --fsync) FSYNC=$2;;
    *) sed -n '2,9p' "$0" >&2; exit 2;;
  esac
  shift 2
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
REF=${REF:-/work/shared/reference/debezium/sql}
PSQL=/usr/lib/postgresql/15/bin/psql
DEV="$TARGET/release/pgseam-dev"
WORK=$(mktemp -d /tmp/pgseam-bench-incab.XXXX)
chmod 777 "$WORK"
export PGPASSWORD=postgres
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$DEV" postgres stop --dir "$WORK/pg" >/dev/null 2>&1 || true
  "$DEV" broker stop --dir "$WORK/broker" >/dev/null 2>&1 || true
  rm -rf "$WORK/pg" "$WORK/broker"
}
trap cleanup EXIT
now() { date +%s.%N; }
eval "$("$DEV" postgres start --dir "$WORK/pg" --conf "fsync = $FSYNC" --conf "max_wal_size = 4GB" | sed 's/^/PG_/')"
eval "$("$DEV" broker start --dir "$WORK/broker" | sed 's/^/BROKER_/')"
q() { "$PSQL" -XAtq -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_port" -U postgres "$@"; }
q -d postgres -c "CREATE DATABASE bench"
q -d bench -f "$REF/bench_schema.sql" >/dev/null
q -d bench -c "ALTER TABLE bench ADD COLUMN ver bigint NOT NULL DEFAULT 0;
               CREATE SEQUENCE bench_new START 1000001;
               CREATE TABLE dbz_signal (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048));
               CREATE TABLE lat (id bigserial PRIMARY KEY, at timestamptz DEFAULT now());"
touch "$WORK/writing"
( while [ -e "$WORK/writing" ]; do
    q -d bench -c "DO \$\$ DECLARE k bigint; top bigint; BEGIN FOR i IN 1..100 LOOP
      INSERT INTO bench (id, a, b, c, txt, ts, amount)
        VALUES (nextval('bench_new'), 1, 2, 3, 'new', now(), 1.5); COMMIT;
      top := currval('bench_new');
      k := 1 + (random() * (top - 1))::bigint;
      UPDATE bench SET ver = ver + 1, a = a + 1 WHERE id = k; COMMIT;
      k := 1 + (random() * (top - 1))::bigint;
      DELETE FROM bench WHERE id = k; COMMIT;
      INSERT INTO lat DEFAULT VALUES; COMMIT;
      PERFORM pg_sleep(0.002); END LOOP; END \$\$;"
  done ) &
PIDS+=($!)
echo "fsync=$(q -d bench -c 'SHOW fsync') chunk=$CHUNK A=$A B=$B"
for rep in $(seq 1 "$REPS"); do
  for side in A B; do
    bin=$A; [ "$side" = B ] && bin=$B
    name="ab${rep}${side,,}"
    cat > "$WORK/$name.worker" <<PROPS
bootstrap.servers=$BROKER_bootstrap
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
offset.storage.file.filename=$WORK/$name.offsets
offset.flush.interval.ms=100
pgseam.sink=null
listeners=http://127.0.0.1:0
PROPS
    cat > "$WORK/$name.connector" <<PROPS
name=$name
connector.class=io.debezium.connector.postgresql.PostgresConnector
database.hostname=127.0.0.1
database.port=$PG_port
database.user=postgres
database.password=postgres
database.dbname=bench
topic.prefix=$name
plugin.name=pgoutput
slot.name=$name
publication.name=$name
publication.autocreate.mode=all_tables
table.include.list=public.bench,public.lat
decimal.handling.mode=string
snapshot.mode=no_data
signal.data.collection=public.dbz_signal
incremental.snapshot.chunk.size=$CHUNK
PROPS
    "$bin" standalone "$WORK/$name.worker" "$WORK/$name.connector" > "$WORK/$name.log" 2>&1 &
    pid=$!
    until grep -q "streaming started" "$WORK/$name.log"; do kill -0 $pid || { cat "$WORK/$name.log"; exit 1; }; sleep 0.05; done
    s0=$(now)
    q -d bench -c "INSERT INTO dbz_signal VALUES ('$name', 'execute-snapshot', '{\"data-collections\": [\"public.bench\"]}')"
    until grep -q "the incremental snapshot is complete" "$WORK/$name.log"; do kill -0 $pid || { cat "$WORK/$name.log"; exit 1; }; sleep 0.05; done
    s1=$(now)
    kill -TERM $pid; wait $pid || true
    q -d bench -c "SELECT pg_drop_replication_slot('$name')" >/dev/null
    echo "rep=$rep side=$side seconds=$(echo "$s1 - $s0" | bc)"
  done
done
rm -f "$WORK/writing"
