#!/usr/bin/env bash
# Two pgseam builds' incremental snapshots of the 1M-row `bench` table, interleaved in one run
# (run by hand): A, B, A, B, … on one PostgreSQL, null sink, `snapshot.mode=no_data`, with the
# writers of bench/incremental-kill.sh (insert + update + delete of `bench` + an insert into
# `lat`, each its own transaction) running throughout. Prints seconds from the signal to "the
# incremental snapshot is complete" per run.
#
# usage: bench/incremental-ab.sh BIN_A BIN_B [--reps 2] [--chunk 1024] [--fsync on|off]
#                                  [--rows 1000000]
# env:   CARGO_TARGET_DIR (for pgseam-dev; default ./target), PGSEAM_BROKER_BIN (tansu)
set -euo pipefail
A=$1 B=$2; shift 2
REPS=2 CHUNK=1024 FSYNC=on ROWS=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS=$2;; --chunk) CHUNK=$2;; --fsync) FSYNC=$2;; --rows) ROWS=$2;;
    *) sed -n '2,10p' "$0" >&2; exit 2;;
  esac
  shift 2
done
. "$(dirname "$0")/lib.sh"
WORK=$(mktemp -d /tmp/pgseam-bench-incab.XXXX)
chmod 777 "$WORK"
cleanup() {
  bench_stop_servers
  rm -rf "$WORK/pg" "$WORK/broker"
}
trap cleanup EXIT
pg_start "$WORK/pg" "fsync = $FSYNC" "max_wal_size = 4GB"
broker_start "$WORK/broker"
pg_create_db bench
load_bench "$ROWS"
Q -c "VACUUM ANALYZE bench" -c "CHECKPOINT"
churn_schema "$ROWS"
signal_tables
# (bench/lib.sh churn_writers: the writers of bench/incremental-kill.sh, throughout)
churn_writers lat
echo "fsync=$(Q -c 'SHOW fsync') chunk=$CHUNK A=$A B=$B"
for rep in $(seq 1 "$REPS"); do
  for side in A B; do
    bin=$A; [ "$side" = B ] && bin=$B
    name="ab${rep}${side,,}"
    # (JSON with schemas, the converters' default: this script's measurements always had them)
    worker_props "$WORK/$name.worker" "offset.storage.file.filename=$WORK/$name.offsets" "pgseam.sink=null" \
      "key.converter.schemas.enable=" "value.converter.schemas.enable="
    connector_props "$WORK/$name.connector" "name=$name" "topic.prefix=$name" "slot.name=$name" \
      "publication.name=$name" "publication.autocreate.mode=all_tables" "table.include.list=public.bench,public.lat" \
      "snapshot.mode=no_data" "signal.data.collection=public.dbz_signal" "incremental.snapshot.chunk.size=$CHUNK"
    "$bin" standalone "$WORK/$name.worker" "$WORK/$name.connector" > "$WORK/$name.log" 2>&1 &
    pid=$!
    until grep -q "streaming started" "$WORK/$name.log"; do kill -0 $pid || { cat "$WORK/$name.log"; exit 1; }; sleep 0.05; done
    s0=$(now)
    Q -c "INSERT INTO dbz_signal VALUES ('$name', 'execute-snapshot', '{\"data-collections\": [\"public.bench\"]}')"
    until grep -q "the incremental snapshot is complete" "$WORK/$name.log"; do kill -0 $pid || { cat "$WORK/$name.log"; exit 1; }; sleep 0.05; done
    s1=$(now)
    kill -TERM $pid; wait $pid || true
    Q -c "SELECT pg_drop_replication_slot('$name')" >/dev/null
    echo "rep=$rep side=$side seconds=$(echo "$s1 - $s0" | bc)"
  done
done
stop_writers
