#!/usr/bin/env bash
# bench/resume.sh: a snapshot killed (-9) about half way and resumed, against the same snapshot
# uninterrupted (issue 4, "Resume"). Run by hand, never in CI; results go to BENCHMARKS.md
# ("Snapshot resume").
#
#   bench/resume.sh [--rows N] [--threads N] [--strategies key,ctid] [--reps N] [--work DIR]
#
#   --rows N        rows of the `bench` dataset (default 1000000)
#   --threads N     snapshot.max.threads (default 4)
#   --strategies L  snapshot.chunk.strategy of the first run (default key,ctid): key ranges are
#                   stored as progress, so the resumed run reads only what is left; ctid ranges
#                   are not, so it reads the table again
#   --reps N        repetitions (default 1)
#   Environment: PGSEAM_BIN, DEV_BIN, COMPARE_BIN (default: release builds in $CARGO_TARGET_DIR
#   or ./target: cargo build --release -p pgseam -p pgseam-testkit -p pgseam-integration-tests
#   --bin pgseam-compare), PGSEAM_BROKER_BIN for the broker.
#
# Per strategy and repetition, each with its own slot and topic prefix, into the tansu broker
# (schemaless JSON, decimal.handling.mode=string, offset.flush.interval.ms=100):
#   full     start -> the offset store records the completed snapshot (every record acknowledged);
#            its CPU-seconds and peak RSS (/usr/bin/time; the process, into the broker)
#   killed   a new run, kill -9 once half of the rows are read (its `snapshot progress` log,
#            every 100 ms); the stored offset's progress is noted (how far the key ranges got)
#   resumed  restart with the same offsets: start -> "the resumed initial snapshot is complete"
#            (logged once the last window's records are acknowledged and the offset stored)
# Then the topic is read back and applied as a primary-key table (pgseam-compare): it must equal
# the source; duplicates re-sent = snapshot records in the topic - rows (nothing writes during
# the runs, so every extra `r` record is a row delivered twice: by the killed run after its
# last stored progress, and again by the resumed run). The resumed part's rows/s = rows the
# resumed run read (rows - rows covered by the stored progress) / its wall time.
set -euo pipefail

ROWS=1000000; THREADS=4; STRATEGIES=key,ctid; REPS=1; WORK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2;;
    --threads) THREADS=$2; shift 2;;
    --strategies) STRATEGIES=$2; shift 2;;
    --reps) REPS=$2; shift 2;;
    --work) WORK=$2; shift 2;;
    -h|--help) sed -n '2,30p' "$0"; exit 0;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2;;
  esac
done
. "$(dirname "$0")/lib.sh"
PGSEAM=${PGSEAM_BIN:-$TARGET/release/pgseam}
COMPARE=${COMPARE_BIN:-$TARGET/release/pgseam-compare}
bench_require "$PGSEAM" "$DEV" "$COMPARE"
WORK=$(bench_workdir "$WORK" pgseam-resume)
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b - a) / 1000}'; }

PID=""
cleanup() {
  set +e
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
  bench_stop_servers
  rm -rf "$WORK/pg" "$WORK/broker" "$WORK/runs"
}
trap cleanup EXIT
pg_start "$WORK/pg" 'shared_buffers = 512MB' 'max_wal_size = 8GB'
broker_start "$WORK/broker"
PGPORT=$PG_port
pg_create_db bench
log "loading bench ($ROWS rows)"
Q -c "CREATE PUBLICATION dbz_publication FOR ALL TABLES"
load_bench "$ROWS"
Q -c "VACUUM ANALYZE bench" -c "CHECKPOINT"

files() {   # DIR NAME STRATEGY (into the broker: pgseam.sink's default)
  mkdir -p "$1"
  worker_props "$1/worker.properties" "offset.storage.file.filename=$1/offsets.dat"
  connector_props "$1/connector.properties" "name=$2" "topic.prefix=$2" "slot.name=$2" \
    "table.include.list=public.bench" "snapshot.mode=initial" "snapshot.max.threads=$THREADS" \
    "snapshot.chunk.strategy=$3" "snapshot.progress.interval.ms=100"
}
start() { RUST_LOG=info "$PGSEAM" standalone "$1/worker.properties" "$1/connector.properties" >> "$1/pgseam.log" 2>&1 & PID=$!; }
alive() { kill -0 "$PID" 2>/dev/null || { echo "pgseam exited early:" >&2; tail -20 "$1/pgseam.log" >&2; exit 1; }; }
# Rows read so far, from the last `snapshot progress` log line (every 100 ms).
read_rows() { { grep -a "snapshot progress" "$1/pgseam.log" 2>/dev/null || true; } | tail -1 | sed -n 's/.* total_rows=\([0-9]*\).*/\1/p' | grep . || echo 0; }
completed() { grep -aqE '"snapshot_completed":true|"lsn_proc"' "$1/offsets.dat" 2>/dev/null; }
# The stored progress's last key (key ranges), from the offset JSON in Connect's file.
stored_key() { grep -ao 'after[^]]*]' "$1/offsets.dat" 2>/dev/null | tail -1 | grep -o '[0-9]\+' | tail -1 || true; }
counted() {   # NAME: snapshot records in the topic, and whether it equals the source
  "$COMPARE" --bootstrap "$BOOTSTRAP" --prefix "$1" --decimal string \
    --conninfo "host=127.0.0.1 port=$PGPORT user=postgres dbname=bench" public.bench
}

RESULTS=$WORK/results.md; : > "$RESULTS"
IFS=, read -ra ST <<< "$STRATEGIES"
for r in $(seq 1 "$REPS"); do for st in "${ST[@]}"; do
  # full
  name=full_${st}_$r; dir=$WORK/runs/$name; files "$dir" "$name" "$st"
  t0=$(now_ms)
  RUST_LOG=info /usr/bin/time -f '%M %U %S' -o "$dir/time" "$PGSEAM" standalone "$dir/worker.properties" \
    "$dir/connector.properties" >> "$dir/pgseam.log" 2>&1 & TPID=$!
  until PID=$(pgrep -P "$TPID"); do sleep 0.01; done
  until completed "$dir"; do alive "$dir"; sleep 0.02; done
  full_s=$(secs "$t0" "$(now_ms)"); kill -TERM "$PID"; wait "$TPID" || true; PID=""
  full_rss_mb=$(awk '{printf "%.0f", $1 / 1024}' "$dir/time"); full_cpu=$(awk '{printf "%.1f", $2 + $3}' "$dir/time")
  full_line=$(counted "$name" | head -1); log "full $st: ${full_s}s; $full_line"
  # killed half way
  name=resume_${st}_$r; dir=$WORK/runs/$name; files "$dir" "$name" "$st"
  t0=$(now_ms); start "$dir"
  until [ "$(read_rows "$dir")" -ge $(( ROWS / 2 )) ]; do alive "$dir"; sleep 0.02; done
  kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  killed_s=$(secs "$t0" "$(now_ms)")
  after=$(stored_key "$dir"); after=${after:-0}
  # resumed
  t0=$(now_ms); start "$dir"
  until grep -q "the resumed initial snapshot is complete" "$dir/pgseam.log"; do
    alive "$dir"; sleep 0.02
    [ $(( $(now_ms) - t0 )) -lt 600000 ] || { echo "no resumed snapshot completed in 600 s (was it done before the kill?)" >&2; exit 1; }
  done
  resumed_s=$(secs "$t0" "$(now_ms)"); kill -TERM "$PID"; wait "$PID" || true; PID=""
  line=$(counted "$name" | head -1)
  reads=$(echo "$line" | sed -n 's/.*events: \([0-9]*\) r.*/\1/p')
  verdict=$(echo "$line" | awk '{print $NF}')
  # rows with id <= after were covered by the stored progress (bench's ids are 1..ROWS)
  left=$(( ROWS - after ))
  log "resume $st: killed at ${killed_s}s, stored key $after, resumed ${resumed_s}s, $line"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f | %s | %s |\n' "$st" "$THREADS" "$full_s" \
    "$(awk -v n="$ROWS" -v s="$full_s" 'BEGIN{printf "%.0f", n / s}')" "$full_cpu / $full_rss_mb" "$killed_s" "$after" \
    "$resumed_s" "$left" "$(awk -v n="$left" -v s="$resumed_s" 'BEGIN{print n / s}')" \
    "$(( reads - ROWS ))" "$verdict" >> "$RESULTS"
  Q -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
done; done

echo
echo "Command: bench/resume.sh --rows $ROWS --threads $THREADS --strategies $STRATEGIES --reps $REPS"
echo
echo "| strategy | readers | uninterrupted s | uninterrupted rows/s | its CPU-s / peak RSS MB | killed at s | stored progress (last key) | resumed run s | rows left to read | resumed rows/s | duplicates re-sent | topic vs source |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
cat "$RESULTS"
