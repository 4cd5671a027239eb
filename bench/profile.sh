#!/usr/bin/env bash
# bench/profile.sh: where pgseam spends its CPU, with the null sink (encoding included, Kafka
# excluded). Run by hand. Needs perf (software clock: works without hardware counters).
#
#   bench/profile.sh [--rows N] [--work DIR] [--sink null|kafka]
#
# --sink kafka profiles the same runs into a local tansu broker (started here), so that the
# producer's share (librdkafka, delivery tracking, checkpoints) shows beside the encoding.
#
# Loads the `bench` dataset (as bench/run.sh does), then profiles two pgseam runs with
# `perf record -e cpu-clock --call-graph dwarf`: the initial snapshot of N rows, and the drain
# of a backlog of N single-row transactions. Prints the top symbols (self time) of each and
# leaves perf.data files in the work dir for `perf report -i`.
set -euo pipefail
ROWS=1000000; WORK=""; SINK=null
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2;;
    --work) WORK=$2; shift 2;;
    --sink) SINK=$2; shift 2;;
    -h|--help) sed -n '2,10p' "$0"; exit 0;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
PGSEAM=$TARGET/release/pgseam; DEV=$TARGET/release/pgseam-dev
[ -x "$PGSEAM" ] && [ -x "$DEV" ] || { echo "build first: cargo build --release -p pgseam -p pgseam-testkit" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 1; }
[ -n "$WORK" ] || WORK=$(mktemp -d /tmp/pgseam-profile.XXXXXX)
mkdir -p "$WORK"; chmod 755 "$WORK"; WORK=$(cd "$WORK" && pwd)
PG_DIR=$WORK/pg
case "$SINK" in null|kafka) ;; *) echo "--sink is null or kafka" >&2; exit 2;; esac
trap '"$DEV" postgres stop --dir "$PG_DIR" 2>/dev/null || true; "$DEV" broker stop --dir "$WORK/broker" 2>/dev/null || true' EXIT
SINK_LINES=("pgseam.sink=null")
if [ "$SINK" = kafka ]; then
  eval "$("$DEV" broker start --dir "$WORK/broker" | sed 's/^/BROKER_/')"
  SINK_LINES=("bootstrap.servers=$BROKER_bootstrap")
fi
eval "$("$DEV" postgres start --dir "$PG_DIR" --conf 'shared_buffers = 512MB' --conf 'max_wal_size = 8GB' | sed 's/^/PG_/')"
export PGPASSWORD=postgres
Q() { psql -X -q -At -h 127.0.0.1 -p "$PG_port" -U postgres -v ON_ERROR_STOP=1 -d bench "$@"; }
psql -X -q -h 127.0.0.1 -p "$PG_port" -U postgres -d postgres -c "CREATE DATABASE bench" >/dev/null
Q -c "CREATE TABLE bench (id bigint PRIMARY KEY, a int, b int, c int, txt text, ts timestamptz, amount numeric(12,2))" \
  -c "INSERT INTO bench SELECT g, g % 1000, g % 7, (g * 31) % 100000, md5(g::text) || substr(md5((g + 1)::text), 1, 18),
        timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', (g % 100000) / 100.0 FROM generate_series(1, $ROWS) g" \
  -c "CREATE TABLE bench_ins (LIKE bench INCLUDING ALL)" -c "VACUUM ANALYZE bench" -c "CHECKPOINT"

files() {   # DIR TABLE SNAPSHOT_MODE
  mkdir -p "$1"
  printf '%s\n' "key.converter.schemas.enable=false" "value.converter.schemas.enable=false" \
    "offset.storage.file.filename=$1/offsets.json" "offset.flush.interval.ms=100" "${SINK_LINES[@]}" \
    "listeners=http://127.0.0.1:0" > "$1/worker.properties"
  printf '%s\n' "name=bench" "connector.class=io.debezium.connector.postgresql.PostgresConnector" \
    "database.hostname=127.0.0.1" "database.port=$PG_port" "database.user=postgres" "database.password=postgres" \
    "database.dbname=bench" "topic.prefix=bench" "plugin.name=pgoutput" "slot.name=prof_$3" \
    "table.include.list=public.$2" "snapshot.mode=$3" "decimal.handling.mode=string" > "$1/connector.properties"
}
# Flat profile (self time) and the pgseam functions with the most inclusive time.
report() {
  perf report -i "$1" --no-children -g none --sort symbol --percent-limit 1 --stdio > "$1.self.txt" 2>/dev/null || true
  perf report -i "$1" --children -g none --sort symbol --percent-limit 3 --stdio > "$1.children.txt" 2>/dev/null || true
  echo "-- self --"; grep -v -e '^#' -e '^$' "$1.self.txt" | cut -c1-120 | sed -n '1,30p'
  echo "-- inclusive (pgseam functions) --"; grep 'pgseam' "$1.children.txt" | cut -c1-140 | sed -n '1,25p'
}

# 1. snapshot
files "$WORK/snap" bench initial
perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -o "$WORK/snapshot.perf.data" -- \
  "$PGSEAM" standalone "$WORK/snap/worker.properties" "$WORK/snap/connector.properties" 2>"$WORK/snap/pgseam.log" &
PERF_PID=$!
until grep -q lsn_proc "$WORK/snap/offsets.json" 2>/dev/null; do sleep 0.05; done
kill -INT "$PERF_PID"; wait "$PERF_PID" || true
echo "== snapshot of $ROWS rows, $SINK sink: top symbols (self) =="; report "$WORK/snapshot.perf.data"

# 2. streaming backlog
files "$WORK/stream" bench_ins no_data
"$PGSEAM" standalone "$WORK/stream/worker.properties" "$WORK/stream/connector.properties" 2>"$WORK/stream/pgseam.log" &
P=$!; until grep -q lsn_proc "$WORK/stream/offsets.json" 2>/dev/null; do sleep 0.05; done
kill -TERM "$P"; wait "$P" || true
Q -c "SET synchronous_commit = off" -c "DO \$\$ BEGIN FOR i IN 1..$ROWS LOOP
        INSERT INTO bench_ins SELECT * FROM bench WHERE id = i; COMMIT; END LOOP; END \$\$"
END=$(Q -c "SELECT pg_current_wal_lsn()")
perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -o "$WORK/stream.perf.data" -- \
  "$PGSEAM" standalone "$WORK/stream/worker.properties" "$WORK/stream/connector.properties" 2>>"$WORK/stream/pgseam.log" &
PERF_PID=$!
until [ "$(Q -c "SELECT confirmed_flush_lsn >= '$END' FROM pg_replication_slots WHERE slot_name = 'prof_no_data'")" = t ]; do sleep 0.05; done
kill -INT "$PERF_PID"; wait "$PERF_PID" || true
echo "== backlog of $ROWS single-row transactions, $SINK sink: top symbols (self) =="; report "$WORK/stream.perf.data"
echo "perf data: $WORK/snapshot.perf.data $WORK/stream.perf.data"
