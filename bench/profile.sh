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
. "$(dirname "$0")/lib.sh"
PGSEAM=$TARGET/release/pgseam
bench_require "$PGSEAM" "$DEV"
command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 1; }
WORK=$(bench_workdir "$WORK" pgseam-profile)
case "$SINK" in null|kafka) ;; *) echo "--sink is null or kafka" >&2; exit 2;; esac
trap bench_stop_servers EXIT
SINK_LINE="pgseam.sink=null"
if [ "$SINK" = kafka ]; then
  broker_start "$WORK/broker"
  SINK_LINE="pgseam.sink=kafka"
fi
pg_start "$WORK/pg" 'shared_buffers = 512MB' 'max_wal_size = 8GB'
pg_create_db bench
load_bench "$ROWS"
Q -c "CREATE TABLE bench_ins (LIKE bench INCLUDING ALL)" -c "VACUUM ANALYZE bench" -c "CHECKPOINT"

files() {   # DIR TABLE SNAPSHOT_MODE
  mkdir -p "$1"
  worker_props "$1/worker.properties" "offset.storage.file.filename=$1/offsets.json" "$SINK_LINE"
  connector_props "$1/connector.properties" "slot.name=prof_$3" "table.include.list=public.$2" "snapshot.mode=$3"
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
