#!/usr/bin/env bash
# bench/run.sh: pgseam side by side with the real Debezium 3.6.3 and with the machine's limits,
# on the same data, in one run (issue 10). Run by hand, never in CI; results go to BENCHMARKS.md.
#
#   bench/run.sh [--rows N] [--txs N] [--reps N] [--datasets bench,wide,toast]
#                [--workloads snapshot,backlog,bigtx,sinklimit,latency] [--big] [--work DIR] [--keep]
#
#   --rows N     rows of dataset `bench` (default 1000000; --big: 10000000). `wide` gets N/5 rows,
#                `toast` N/50 (20 kB each), so that each dataset is a comparable amount of work.
#   --txs N      single-row transactions of the streaming backlog and rows of the one big
#                transaction, for `bench` (default: --rows); same divisors for `wide` and `toast`.
#   --reps N     repetitions of each measurement (default 3): the report gives median, min, max.
#   --work DIR   work directory (default: a new /tmp/pgseam-bench.XXXXXX); kept with --keep.
#   --consumers L  only these consumers (default all): pgseam-broker, pgseam-null, debezium,
#                copy-limit, pg_recvlogical (targeted before/after measurements).
#   Environment: PGSEAM_BIN (default: the release build) runs another pgseam binary;
#   PGSEAM_WORKER_EXTRA lines go into every pgseam worker.properties (e.g.
#   $'producer.linger.ms=20\nproducer.compression.type=lz4') to measure producer settings.
#   PGSEAM_CONNECTOR_EXTRA lines go into every pgseam connector.properties (e.g.
#   snapshot.max.threads=4). A key given there replaces the script's value for it.
#
# Needs: release binaries (cargo build --release -p pgseam -p pgseam-testkit, then
# cargo build --release -p pgseam-integration-tests --bin pgseam-bench), in $CARGO_TARGET_DIR or ./target; Java 17
# and the Debezium harness jars (DBZPEER_LIBS, default /work/dbzpeer: libs/ and classes/ from
# the reference's bin/setup.sh); PostgreSQL 15 client tools; PGSEAM_BROKER_BIN or the testkit's
# broker lookup. It starts its own PostgreSQL 15 and tansu broker and stops them at the end.
#
# What is measured (every consumer reads the same data, the same way, in the same run):
#   snapshot   initial snapshot of the table: pgseam into the broker (done = the offset store
#              records the completed snapshot, i.e. every record is acknowledged), pgseam with
#              the null sink (pgseam.sink=null: encoded, then dropped), Debezium in count mode
#              (first event -> snapshot=last record; its JVM start is reported beside), and
#              `COPY t TO STDOUT (FORMAT binary)` through psql into /dev/null (the snapshot limit).
#   backlog    N single-row INSERT transactions written while every consumer is stopped (their
#              slots created beforehand), then each drain: pgseam (broker, null sink; done =
#              the slot's confirmed_flush_lsn reaches the backlog's end LSN), Debezium (count
#              mode, first -> N-th event), pg_recvlogical with pgoutput into /dev/null up to the
#              end LSN (the streaming limit).
#   bigtx      the same, for one transaction of N rows.
#   sinklimit  a raw librdkafka producer (pgseam's settings: idempotent, acks=all,
#              murmur2_random) of N pre-serialised records of the mean key and value size of
#              pgseam's records for the dataset (taken from the snapshot run's topic).
#   start      (with the streaming workloads) pgseam's start to streaming on an idle server: process
#              start -> slot created and first offset stored, snapshot.mode=no_data.
#   latency    (bench only) pgseam into the broker, live, while pgbench inserts at 5000 tx/s for
#              10 s; commit time (source.ts_ms) -> Kafka record timestamp (CreateTime, set when
#              librdkafka enqueues the record): p50/p99; and commit -> received by a consumer
#              tailing the topic during the load (live_*: an upper bound of commit ->
#              acknowledgement, since an acks=all record is readable once acknowledged).
#              LATENCY_RATE / LATENCY_SECS change the rate and duration.
# Converter settings for all: schemaless JSON (schemas.enable=false), decimal.handling.mode=string.
# CPU-seconds and peak RSS come from /usr/bin/time (user+sys, max RSS) of the consumer process
# alone (PostgreSQL's walsender/backends are not counted for anyone). MB/s = rows/s x the
# dataset's mean record size (key + value bytes of pgseam's records), the same for every
# consumer, so that it reads as bytes delivered to Kafka. Runs into the broker also note the
# broker's CPU-seconds (broker_cpu_s): on a small machine it competes with everything else.
set -euo pipefail

ROWS=1000000; TXS=""; REPS=3; DATASETS=bench,wide,toast
WORKLOADS=snapshot,backlog,bigtx,sinklimit,latency; WORK=""; KEEP=0
CONSUMERS=pgseam-broker,pgseam-null,debezium,copy-limit,pg_recvlogical
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2;;
    --txs) TXS=$2; shift 2;;
    --reps) REPS=$2; shift 2;;
    --datasets) DATASETS=$2; shift 2;;
    --workloads) WORKLOADS=$2; shift 2;;
    --big) ROWS=10000000; shift;;
    --work) WORK=$2; shift 2;;
    --keep) KEEP=1; shift;;
    --consumers) CONSUMERS=$2; shift 2;;
    -h|--help) sed -n '2,40p' "$0"; exit 0;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2;;
  esac
done
TXS=${TXS:-$ROWS}
# PGSEAM_WORKER_EXTRA is for this script only: exported, pgseam would read it as the worker
# key `extra` (PGSEAM_WORKER_<KEY> environment overrides) and refuse to start.
export -n PGSEAM_WORKER_EXTRA 2>/dev/null || true
export -n PGSEAM_CONNECTOR_EXTRA 2>/dev/null || true

. "$(dirname "$0")/lib.sh"
PGSEAM=${PGSEAM_BIN:-$TARGET/release/pgseam}
TOOL=$TARGET/release/pgseam-bench
bench_require "$PGSEAM" "$DEV" "$TOOL"
DBZ_REF=${DBZ_REF:-/work/shared/reference/debezium}
DBZPEER_LIBS=${DBZPEER_LIBS:-/work/dbzpeer}
[ -f "$DBZPEER_LIBS/classes/DbzPeer.class" ] || { echo "no Debezium harness in $DBZPEER_LIBS (run $DBZ_REF/bin/setup.sh)" >&2; exit 1; }
export JAVA_OPTS=${JAVA_OPTS:--Xms2g -Xmx2g}   # as the reference's bench.sh
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

WORK=$(bench_workdir "$WORK" pgseam-bench)
RESULTS=$WORK/results.tsv; SIZES=$WORK/sizes.tsv
: > "$RESULTS"; : > "$SIZES"
# Debezium's state and logs stay in this run's work dir; only the jars are shared.
export DBZPEER_HOME=$WORK/dbz DBZ_CP="$DBZPEER_LIBS/libs/*:$DBZPEER_LIBS/classes"
mkdir -p "$DBZPEER_HOME"
want() { case ",$CONSUMERS," in *",$1,"*) return 0;; esac; return 1; }

# ---------------------------------------------------------------- servers
PG_DIR=$WORK/pg; BROKER_DIR=$WORK/broker
cleanup() {
  set +e
  [ -n "${CHILD_PID:-}" ] && kill "$CHILD_PID" 2>/dev/null
  bench_stop_servers
  if [ "$KEEP" = 0 ]; then rm -rf "$WORK/pg" "$WORK/broker" "$WORK/runs" "$DBZPEER_HOME/state"; fi
}
trap cleanup EXIT
log "work dir $WORK"
pg_start "$PG_DIR" 'shared_buffers = 512MB' 'max_wal_size = 8GB' 'max_replication_slots = 40' \
  'max_wal_senders = 40' 'wal_sender_timeout = 0'
PGPORT=$PG_port
pg_create_db bench
Q -c "CREATE PUBLICATION dbz_publication FOR ALL TABLES"
log "PostgreSQL 15 on port $PGPORT"

BOOTSTRAP=""
# The broker's own CPU-seconds so far (it shares the machine's cores with PostgreSQL and pgseam).
CLK_TCK=$(getconf CLK_TCK)
broker_cpu() { awk -v hz="$CLK_TCK" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$BROKER_pid/stat" 2>/dev/null || echo "?"; }

# ---------------------------------------------------------------- datasets
rows_of() { case "$1" in bench) echo "$ROWS";; wide) echo $((ROWS / 5));; toast) echo $((ROWS / 50));; esac; }
txs_of() { case "$1" in bench) echo "$TXS";; wide) echo $((TXS / 5));; toast) echo $((TXS / 50));; esac; }

load_dataset() {
  local ds=$1 n; n=$(rows_of "$1")
  log "loading dataset $ds ($n rows)"
  load_dataset_table "$ds" "$n"
  # The streaming workloads insert copies of the dataset's rows (new ids) into <ds>_ins.
  local cols; cols=$(Q -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                            WHERE attrelid = '$ds'::regclass AND attnum > 1 AND NOT attisdropped")
  Q -c "CREATE TABLE ${ds}_ins (LIKE $ds INCLUDING ALL)" \
    -c "CREATE PROCEDURE ${ds}_single_tx(n bigint) LANGUAGE plpgsql AS \$\$
        BEGIN FOR i IN 1..n LOOP
          INSERT INTO ${ds}_ins SELECT i, $cols FROM $ds WHERE id = 1 + (i - 1) % $n; COMMIT;
        END LOOP; END \$\$" \
    -c "CREATE PROCEDURE ${ds}_one_tx(n bigint) LANGUAGE sql AS \$\$
          INSERT INTO ${ds}_ins SELECT i, $cols FROM generate_series(1, n) i JOIN $ds ON id = 1 + (i - 1) % $n \$\$" \
    -c "VACUUM ANALYZE $ds" -c "CHECKPOINT"
  log "dataset $ds: $(Q -c "SELECT pg_size_pretty(pg_total_relation_size('$ds'))")"
}

# ---------------------------------------------------------------- measuring one process
# measure CMD...: runs CMD under /usr/bin/time in the background; sets CHILD_PID (the command's
# own pid) and TIME_FILE. finish: waits for it and sets CPU_S and RSS_KB.
measure() {
  TIME_FILE=$WORK/runs/time.$RANDOM
  mkdir -p "$WORK/runs"
  /usr/bin/time -f '%e %U %S %M' -o "$TIME_FILE" "$@" &
  TIME_PID=$!
  CHILD_PID=""
  for _ in $(seq 1 100); do
    CHILD_PID=$(pgrep -P "$TIME_PID" | head -1 || true)
    [ -n "$CHILD_PID" ] && break
    kill -0 "$TIME_PID" 2>/dev/null || break
    sleep 0.01
  done
}
finish() {
  wait "$TIME_PID" || true
  CHILD_PID=""
  local line; line=$(tail -1 "$TIME_FILE")
  CPU_S=$(echo "$line" | awk '{printf "%.3f", $2 + $3}')
  RSS_KB=$(echo "$line" | awk '{print $4}')
}
stop_child() { [ -n "${CHILD_PID:-}" ] && kill -TERM "$CHILD_PID" 2>/dev/null; finish; }
# record DATASET WORKLOAD CONSUMER REP EVENTS SECONDS [NOTE]
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$CPU_S" "$RSS_KB" "${7:-}" >> "$RESULTS"
  log "$2 $1 $3 #$4: $5 events in $6 s ($(awk -v e="$5" -v s="$6" 'BEGIN{printf "%.0f", e / s}') /s), cpu ${CPU_S} s, rss $((RSS_KB / 1024)) MB ${7:-}"
}

# ---------------------------------------------------------------- pgseam
# pgseam_files DIR SLOT TABLE SINK SNAPSHOT_MODE: worker + connector properties in DIR.
# The EXTRA lines replace a default of the same key.
pgseam_files() {
  mkdir -p "$1"
  local -a worker_extra connector_extra
  mapfile -t worker_extra <<< "${PGSEAM_WORKER_EXTRA:-}"
  mapfile -t connector_extra <<< "${PGSEAM_CONNECTOR_EXTRA:-}"
  worker_props "$1/worker.properties" "offset.storage.file.filename=$1/offsets.json" "pgseam.sink=$4" \
    "${worker_extra[@]}"
  connector_props "$1/connector.properties" "slot.name=$2" "table.include.list=public.$3" "snapshot.mode=$5" \
    "${connector_extra[@]}"
}
pgseam_start() { measure env RUST_LOG=warn "$PGSEAM" standalone "$1/worker.properties" "$1/connector.properties" 2>>"$1/pgseam.log"; }
# The offset store records the completed snapshot (every snapshot record acknowledged):
# `"snapshot_completed":true`, or already the first streaming offset (`lsn_proc`, written only
# after the snapshot; with offset.flush.interval.ms=100 it replaces the snapshot's offset within
# a poll or two, so looking for the first alone can miss it). The store is Connect's
# Java-serialised file; the offset JSON inside it is plain text.
snapshot_stored() { grep -aqE '"snapshot_completed":true|"lsn_proc"' "$1/offsets.json" 2>/dev/null; }
pgseam_alive() { kill -0 "$CHILD_PID" 2>/dev/null || { echo "pgseam exited early; log:" >&2; tail -20 "$1/pgseam.log" >&2; exit 1; }; }
# Creates a slot (and offsets) for a later drain: pgseam with snapshot.mode=no_data, once.
# Also measures start to streaming (process start -> slot created and offset stored, idle server).
pgseam_prepare_slot() {   # DIR SLOT TABLE DATASET
  local t0 tend
  pgseam_files "$1" "$2" "$3" null no_data
  t0=$(now_ms); pgseam_start "$1"
  until snapshot_stored "$1" 2>/dev/null; do pgseam_alive "$1"; sleep 0.01; done
  tend=$(now_ms); stop_child
  record "$4" start pgseam-null 0 1 "$(secs_between "$t0" "$tend")" "start_to_streaming"
}
slot_reached() { [ "$(Q -c "SELECT confirmed_flush_lsn >= '$2' FROM pg_replication_slots WHERE slot_name = '$1'")" = t ]; }
drop_slot() { Q -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$1'" >/dev/null; }

# ---------------------------------------------------------------- Debezium
DBZ=$DBZ_REF/bin/dbzpeer.sh
dbz_args() {   # NAME SLOT TABLE SNAPSHOT_MODE
  echo "database.hostname=127.0.0.1 database.port=$PGPORT database.dbname=bench slot.name=$2 table.include.list=public.$3"
  echo "snapshot.mode=$4 converter.schemas.enable=false decimal.handling.mode=string --mode count"
}
dbz_status() { { grep -E "^$2=" "$DBZPEER_HOME/state/$1.status" || true; } | cut -d= -f2; }
dbz_prepare_slot() {   # NAME SLOT TABLE
  # shellcheck disable=SC2046
  "$DBZ" start "$1" $(dbz_args "$1" "$2" "$3" no_data) >/dev/null
  "$DBZ" wait-ready "$1" 300 >/dev/null
  "$DBZ" stop "$1" >/dev/null
}

# ---------------------------------------------------------------- workloads
snapshot_workload() {
  local ds=$1 n r dir t0 tend; n=$(rows_of "$ds")
  for r in $(seq 1 "$REPS"); do
    # pgseam into the broker
    if want pgseam-broker; then
    broker_start "$BROKER_DIR"; dir=$WORK/runs/snap_broker_${ds}_$r
    pgseam_files "$dir" "ps_snap_b_$r" "$ds" kafka initial
    t0=$(now_ms); pgseam_start "$dir"
    until snapshot_stored "$dir" 2>/dev/null; do pgseam_alive "$dir"; sleep 0.02; done
    tend=$(now_ms); stop_child
    record "$ds" snapshot pgseam-broker "$r" "$n" "$(secs_between "$t0" "$tend")" "broker_cpu_s=$(broker_cpu)"
    if [ "$r" = 1 ]; then
      "$TOOL" sizes --bootstrap "$BOOTSTRAP" --topic "bench.public.$ds" --expect "$(( n < 20000 ? n : 20000 ))" \
        | awk -v ds="$ds" '{for(i=1;i<=NF;i++){split($i,kv,"="); v[kv[1]]=kv[2]}; print ds "\t" v["mean_key_bytes"] "\t" v["mean_value_bytes"]}' >> "$SIZES"
    fi
    broker_stop; drop_slot "ps_snap_b_$r"
    fi
    # pgseam, null sink
    if want pgseam-null; then
    dir=$WORK/runs/snap_null_${ds}_$r
    pgseam_files "$dir" "ps_snap_n_$r" "$ds" null initial
    t0=$(now_ms); pgseam_start "$dir"
    until snapshot_stored "$dir" 2>/dev/null; do pgseam_alive "$dir"; sleep 0.02; done
    tend=$(now_ms); stop_child
    record "$ds" snapshot pgseam-null "$r" "$n" "$(secs_between "$t0" "$tend")"
    drop_slot "ps_snap_n_$r"
    fi
    # Debezium, count mode
    if want debezium; then
    local name=snap_${ds}_$r
    # shellcheck disable=SC2046
    measure "$DBZ" run "$name" $(dbz_args "$name" "dbz_snap_$r" "$ds" initial) --exit-on-snapshot-last slot.drop.on.stop=true 2>/dev/null
    finish
    local s f l c; s=$(dbz_status "$name" startMs); f=$(dbz_status "$name" firstEventMs)
    l=$(dbz_status "$name" snapshotLastMs); c=$(dbz_status "$name" count)
    record "$ds" snapshot debezium "$r" "$c" "$(secs_between "$f" "$l")" "jvm_start_to_last_s=$(secs_between "$s" "$l")"
    drop_slot "dbz_snap_$r"
    fi
    # the COPY limit
    want copy-limit || continue
    t0=$(now_ms)
    measure psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d bench -c "COPY $ds TO STDOUT (FORMAT binary)" -o /dev/null
    finish; tend=$(now_ms)
    record "$ds" snapshot copy-limit "$r" "$n" "$(secs_between "$t0" "$tend")"
  done
}

# stream_workload DATASET backlog|bigtx: slots first, then the changes, then each drain.
stream_workload() {
  local ds=$1 wl=$2 n r dir t0 tend end; n=$(txs_of "$ds")
  log "$wl $ds: creating slots for $REPS repetitions"
  Q -c "TRUNCATE ${ds}_ins"
  for r in $(seq 1 "$REPS"); do
    want pgseam-broker && pgseam_prepare_slot "$WORK/runs/${wl}_broker_${ds}_$r" "ps_${wl}_b_$r" "${ds}_ins" "$ds"
    want pgseam-null && pgseam_prepare_slot "$WORK/runs/${wl}_null_${ds}_$r" "ps_${wl}_n_$r" "${ds}_ins" "$ds"
    want debezium && dbz_prepare_slot "${wl}_${ds}_$r" "dbz_${wl}_$r" "${ds}_ins"
    if want pg_recvlogical; then pg_recvlogical -h 127.0.0.1 -p "$PGPORT" -U postgres -d bench -S "rl_${wl}_$r" -P pgoutput --create-slot; fi
  done
  log "$wl $ds: writing $n changes"
  t0=$(now_ms)
  if [ "$wl" = backlog ]; then
    Q -c "SET synchronous_commit = off" -c "CALL ${ds}_single_tx($n)"
  else
    Q -c "CALL ${ds}_one_tx($n)"
  fi
  end=$(Q -c "SELECT pg_current_wal_lsn()")
  log "$wl $ds: written in $(secs_between "$t0" "$(now_ms)") s, WAL end $end"
  for r in $(seq 1 "$REPS"); do
    # the streaming limit
    if want pg_recvlogical; then
    t0=$(now_ms)
    measure pg_recvlogical -h 127.0.0.1 -p "$PGPORT" -U postgres -d bench -S "rl_${wl}_$r" --start \
      -o proto_version=1 -o publication_names=dbz_publication -E "$end" -f /dev/null
    finish; tend=$(now_ms)
    record "$ds" "$wl" pg_recvlogical "$r" "$n" "$(secs_between "$t0" "$tend")"
    drop_slot "rl_${wl}_$r"
    fi
    # pgseam, null sink, then into the broker
    for sink in null broker; do
      want "pgseam-$sink" || continue
      local slot=ps_${wl}_${sink:0:1}_$r
      dir=$WORK/runs/${wl}_${sink}_${ds}_$r
      if [ "$sink" = broker ]; then broker_start "$BROKER_DIR"; pgseam_files "$dir" "$slot" "${ds}_ins" kafka no_data
      else pgseam_files "$dir" "$slot" "${ds}_ins" null no_data; fi
      t0=$(now_ms); pgseam_start "$dir"
      until slot_reached "$slot" "$end"; do pgseam_alive "$dir"; sleep 0.05; done
      tend=$(now_ms); stop_child
      local note=""; [ "$sink" = broker ] && note="broker_cpu_s=$(broker_cpu)"
      record "$ds" "$wl" "pgseam-$sink" "$r" "$n" "$(secs_between "$t0" "$tend")" "$note"
      [ "$sink" = broker ] && broker_stop
      drop_slot "$slot"
    done
    # Debezium, count mode: stops itself at the N-th event (or after 30 s without events)
    want debezium || continue
    local name=${wl}_${ds}_$r
    # shellcheck disable=SC2046
    measure "$DBZ" run "$name" $(dbz_args "$name" "dbz_${wl}_$r" "${ds}_ins" no_data) --max-events "$n" --idle-exit-ms 30000 2>/dev/null
    finish
    local s f l c; s=$(dbz_status "$name" startMs); f=$(dbz_status "$name" firstEventMs)
    l=$(dbz_status "$name" lastEventMs); c=$(dbz_status "$name" count)
    [ "$c" = "$n" ] || log "WARNING: Debezium consumed $c events, expected $n"
    record "$ds" "$wl" debezium "$r" "$c" "$(secs_between "$f" "$l")" "jvm_start_to_last_s=$(secs_between "$s" "$l")"
    drop_slot "dbz_${wl}_$r"
  done
  Q -c "TRUNCATE ${ds}_ins"
}

sinklimit_workload() {
  local ds=$1 n r kb vb; n=$(rows_of "$ds")
  read -r kb vb < <(awk -v ds="$ds" '$1 == ds {print $2, $3}' "$SIZES")
  [ -n "${vb:-}" ] || { log "sinklimit $ds: no record sizes (needs the snapshot workload); skipped"; return; }
  for r in $(seq 1 "$REPS"); do
    broker_start "$BROKER_DIR"
    local t0 tend; t0=$(now_ms)
    measure "$TOOL" sink-limit --bootstrap "$BOOTSTRAP" --topic "sinklimit.$ds" --count "$n" \
      --key-bytes "${kb%.*}" --value-bytes "${vb%.*}" > "$WORK/runs/sinklimit_${ds}_$r.out"
    finish; tend=$(now_ms)
    local secs; secs=$(sed -n 's/.* secs=\([0-9.]*\).*/\1/p' "$WORK/runs/sinklimit_${ds}_$r.out")
    record "$ds" sinklimit rdkafka-producer "$r" "$n" "$secs" "process_s=$(secs_between "$t0" "$tend") broker_cpu_s=$(broker_cpu)"
    broker_stop
  done
}

latency_workload() {
  local rate=${LATENCY_RATE:-5000} secs=${LATENCY_SECS:-10} r dir n
  local cols; cols=$(Q -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                          WHERE attrelid = 'bench'::regclass AND attnum > 1 AND NOT attisdropped")
  local rows; rows=$(rows_of bench)
  printf '\\set i random(1, 1000000000000)\nINSERT INTO bench_ins SELECT :i, %s FROM bench WHERE id = 1 + :i %% %s;\n' "$cols" "$rows" > "$WORK/latency.sql"
  for r in $(seq 1 "$REPS"); do
    Q -c "TRUNCATE bench_ins"
    broker_start "$BROKER_DIR"; dir=$WORK/runs/latency_$r
    pgseam_files "$dir" "ps_lat_$r" bench_ins kafka no_data
    pgseam_start "$dir"
    until snapshot_stored "$dir" 2>/dev/null; do pgseam_alive "$dir"; sleep 0.05; done
    sleep 1
    # The live consumer tails the topic from its end; the load starts once it is assigned.
    local live=$WORK/runs/latency_$r.live
    "$TOOL" latency-live --bootstrap "$BOOTSTRAP" --topic bench.public.bench_ins \
      --expect $((rate * secs)) --idle-stop-s 5 --timeout-s $((secs + 120)) > "$live" 2>&1 &
    local live_pid=$!
    until grep -q ready "$live" 2>/dev/null; do kill -0 "$live_pid" || { cat "$live" >&2; exit 1; }; sleep 0.05; done
    "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PGPORT" -U postgres -c 4 -j 2 -R "$rate" -T "$secs" -f "$WORK/latency.sql" bench \
      > "$WORK/runs/latency_$r.pgbench" 2>&1
    n=$(Q -c "SELECT count(*) FROM bench_ins")
    local end; end=$(Q -c "SELECT pg_current_wal_lsn()")
    until slot_reached "ps_lat_$r" "$end"; do pgseam_alive "$dir"; sleep 0.05; done
    stop_child
    wait "$live_pid" || { cat "$live" >&2; exit 1; }
    local out; out=$("$TOOL" latency --bootstrap "$BOOTSTRAP" --topic bench.public.bench_ins --expect "$n")
    out="$out $(grep live_records "$live")"
    log "latency #$r at $rate tx/s: $out ($(grep -o 'tps = [0-9.]*' "$WORK/runs/latency_$r.pgbench" | head -1))"
    printf 'bench\tlatency\tpgseam-broker\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$n" "$secs" "$CPU_S" "$RSS_KB" "$out rate=$rate" >> "$RESULTS"
    broker_stop; drop_slot "ps_lat_$r"
  done
}

# ---------------------------------------------------------------- main
IFS=, read -r -a DS_LIST <<< "$DATASETS"
IFS=, read -r -a WL_LIST <<< "$WORKLOADS"
has() { local w; for w in "${WL_LIST[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
for ds in "${DS_LIST[@]}"; do
  load_dataset "$ds"
  has snapshot && snapshot_workload "$ds"
  has backlog && stream_workload "$ds" backlog
  has bigtx && stream_workload "$ds" bigtx
  has sinklimit && sinklimit_workload "$ds"
  if has latency && [ "$ds" = bench ]; then latency_workload; fi
done

{
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -r)"
  echo "Command: bench/run.sh --rows $ROWS --txs $TXS --reps $REPS --datasets $DATASETS --workloads $WORKLOADS"
  echo
  python3 "$BENCH_DIR/report.py" "$RESULTS" "$SIZES"
} | tee "$WORK/report.md"
log "report: $WORK/report.md, raw: $RESULTS"
