#!/usr/bin/env bash
# bench/chunking.sh: ctid block ranges against primary-key ranges, per table shape (issue 4).
# Run by hand, never in CI; results go to BENCHMARKS.md ("Snapshot chunk strategies").
#
#   bench/chunking.sh [--rows N] [--reps N] [--datasets L] [--strategies L] [--threads L] [--work DIR]
#
#   --rows N        rows of `bench`, `shuffled`, `uuidkey`, `updated` (default 1000000); `wide` gets
#                   N/5 rows, `toast` N/50 (20 kB each, out of line), as in bench/run.sh.
#   --reps N        repetitions (default 2); the table gives the median (and min-max).
#   --datasets L    default bench,shuffled,uuidkey,updated,wide,toast
#   --strategies L  snapshot.chunk.strategy values (default ctid,key; add auto to see its choice)
#   --threads L     snapshot.max.threads values (default 1,4)
#   Environment: PGSEAM_BIN (default: the release build in $CARGO_TARGET_DIR or ./target),
#   DEV_BIN (pgseam-dev, same default).
#
# Datasets (all with a primary key, all VACUUM ANALYZEd):
#   bench     bigint key inserted in key order: physical order follows the key (correlation 1)
#   shuffled  the same rows inserted in random key order (correlation ~0)
#   uuidkey   the same columns with a random uuid key (gen_random_uuid(); correlation ~0)
#   updated   `bench`, then 30% of its rows updated at random (moved to the end of the heap)
#   wide      60 columns of 12 types (bench/run.sh's `wide`)
#   toast     20 kB text per row, STORAGE EXTERNAL (bench/run.sh's `toast`)
#
# Each run is pgseam standalone with the null sink (pgseam.sink=null: every record encoded as
# schemaless JSON, then dropped), snapshot.mode=initial, snapshot.chunk.rows default (100000);
# wall = process start -> the offset store records the completed snapshot; CPU-seconds and peak
# RSS of the pgseam process from /usr/bin/time. The key strategy's wall time includes its planning
# scan (one ordered read of the key per table). PostgreSQL's CPU-seconds (the postmaster's
# children, i.e. the readers' backends, from /proc) are the server's cost of each strategy and,
# unlike wall time, do not depend on what else runs on the machine. pg_stats correlation of the first key column and
# the heap size are printed per dataset: they are what `auto` decides on.
set -euo pipefail

ROWS=1000000; REPS=2; DATASETS=bench,shuffled,uuidkey,updated,wide,toast
STRATEGIES=ctid,key; THREADS=1,4; WORK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2;;
    --reps) REPS=$2; shift 2;;
    --datasets) DATASETS=$2; shift 2;;
    --strategies) STRATEGIES=$2; shift 2;;
    --threads) THREADS=$2; shift 2;;
    --work) WORK=$2; shift 2;;
    -h|--help) sed -n '2,30p' "$0"; exit 0;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2;;
  esac
done

. "$(dirname "$0")/lib.sh"
PGSEAM=${PGSEAM_BIN:-$TARGET/release/pgseam}
bench_require "$PGSEAM" "$DEV"
WORK=$(bench_workdir "$WORK" pgseam-chunking)
RESULTS=$WORK/results.tsv; : > "$RESULTS"

PG_DIR=$WORK/pg
cleanup() {
  set +e
  [ -n "${TIME_PID:-}" ] && kill "$(pgrep -P "$TIME_PID")" 2>/dev/null
  bench_stop_servers
  rm -rf "$WORK/pg" "$WORK/runs"
}
trap cleanup EXIT
pg_start "$PG_DIR" 'shared_buffers = 512MB' 'max_wal_size = 8GB' 'max_replication_slots = 20' 'max_wal_senders = 20'
PGPORT=$PG_port
pg_create_db bench
Q -c "CREATE PUBLICATION dbz_publication FOR ALL TABLES"

# PostgreSQL's CPU-seconds so far: the postmaster and every child it has reaped (backends of
# finished sessions), plus its live children. Independent of what else loads the machine.
CLK_TCK=$(getconf CLK_TCK)
pg_cpu() {
  local pm; pm=$(head -1 "$PG_DIR/data/postmaster.pid")
  { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
    for c in $(pgrep -P "$pm"); do awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || true; done
  } | awk -v hz="$CLK_TCK" '{s += $1} END {printf "%.2f", s / hz}'
}
rows_of() { case "$1" in wide) echo $((ROWS / 5));; toast) echo $((ROWS / 50));; *) echo "$ROWS";; esac; }
# bench, wide and toast are bench/lib.sh's (as bench/run.sh); the others vary bench's columns.
load_dataset() {
  local ds=$1 n; n=$(rows_of "$1")
  log "loading $ds ($n rows)"
  case "$ds" in
    bench|wide|toast) load_dataset_table "$ds" "$n";;
    shuffled) Q -c "CREATE TABLE shuffled (id bigint PRIMARY KEY, $BENCH_COLS)" \
                -c "INSERT INTO shuffled SELECT g, $BENCH_SEL FROM generate_series(1, $n) g ORDER BY random()";;
    uuidkey) Q -c "CREATE TABLE uuidkey (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), $BENCH_COLS)" \
               -c "INSERT INTO uuidkey (a, b, c, txt, ts, amount) SELECT $BENCH_SEL FROM generate_series(1, $n) g";;
    updated) Q -c "CREATE TABLE updated (id bigint PRIMARY KEY, $BENCH_COLS)" \
               -c "INSERT INTO updated SELECT g, $BENCH_SEL FROM generate_series(1, $n) g" \
               -c "UPDATE updated SET a = a + 1 WHERE random() < 0.3";;
  esac
  Q -c "VACUUM ANALYZE $ds" -c "CHECKPOINT"
  local info
  info=$(Q -F ' ' -c "SELECT round(s.correlation::numeric, 3), c.relpages,
                            pg_size_pretty(pg_total_relation_size(c.oid))
                     FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
                     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
                     LEFT JOIN pg_stats s ON s.schemaname = 'public' AND s.tablename = c.relname AND s.attname = a.attname
                     WHERE c.oid = '$ds'::regclass")
  log "$ds: correlation relpages total_size = $info"
  echo "$ds $n $info" >> "$WORK/datasets.txt"
}

run() {   # DATASET STRATEGY THREADS REP
  local ds=$1 strategy=$2 threads=$3 r=$4 dir slot t0 tend pid line
  dir=$WORK/runs/${ds}_${strategy}_${threads}_$r; slot=chunk_${ds}_${strategy}_${threads}_$r
  mkdir -p "$dir"
  worker_props "$dir/worker.properties" "offset.storage.file.filename=$dir/offsets.dat" "pgseam.sink=null"
  connector_props "$dir/connector.properties" "name=chunking" "slot.name=$slot" "table.include.list=public.$ds" \
    "snapshot.mode=initial" "snapshot.max.threads=$threads" "snapshot.chunk.strategy=$strategy"
  sleep 0.5; cpu0=$(pg_cpu); t0=$(now_ms)
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time" env RUST_LOG=info "$PGSEAM" standalone \
    "$dir/worker.properties" "$dir/connector.properties" > "$dir/pgseam.log" 2>&1 &
  TIME_PID=$!
  until grep -aqE '"snapshot_completed":true|"lsn_proc"' "$dir/offsets.dat" 2>/dev/null; do
    kill -0 "$TIME_PID" 2>/dev/null || { echo "pgseam exited early:" >&2; tail -20 "$dir/pgseam.log" >&2; exit 1; }
    sleep 0.02
  done
  tend=$(now_ms)
  pid=$(pgrep -P "$TIME_PID" || true); [ -n "$pid" ] && kill -TERM "$pid"
  wait "$TIME_PID" || true; TIME_PID=""
  # the readers' backends exit with pgseam; let the postmaster reap them
  Q -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null
  sleep 0.5; local server_s; server_s=$(awk -v a="$cpu0" -v b="$(pg_cpu)" 'BEGIN{printf "%.2f", b - a}')
  line=$(tail -1 "$dir/time")
  # the strategy auto chose, from the per-table log line
  local chosen; chosen=$(grep -o 'strategy=[a-z]*' "$dir/pgseam.log" | head -1 | cut -d= -f2 || true)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ds" "$strategy" "$threads" "$r" \
    "$(awk -v a="$t0" -v b="$tend" 'BEGIN{printf "%.3f", (b - a) / 1000}')" \
    "$(echo "$line" | awk '{printf "%.2f", $2 + $3}')" "$(echo "$line" | awk '{print $4}')" "${chosen:-?}" \
    "$server_s" >> "$RESULTS"
  log "$(tail -1 "$RESULTS")"
  rm -rf "$dir"
}

IFS=, read -ra DS <<< "$DATASETS"; IFS=, read -ra ST <<< "$STRATEGIES"; IFS=, read -ra TH <<< "$THREADS"
for ds in "${DS[@]}"; do
  load_dataset "$ds"
  for r in $(seq 1 "$REPS"); do
    for th in "${TH[@]}"; do for st in "${ST[@]}"; do run "$ds" "$st" "$th" "$r"; done; done
  done
  Q -c "DROP TABLE $ds"
done

# Report: median wall (min-max), rows/s, CPU-s per 1M rows, peak RSS MB (max over reps).
echo
echo "Command: bench/chunking.sh --rows $ROWS --reps $REPS --datasets $DATASETS --strategies $STRATEGIES --threads $THREADS"
echo
echo "| dataset | rows | key correlation | heap pages | readers | strategy | wall s (median, min-max) | rows/s | PostgreSQL CPU-s / 1M rows | pgseam CPU-s / 1M rows | pgseam peak RSS MB |"
echo "|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|"
for ds in "${DS[@]}"; do
  read -r _ n corr pages _ < <(grep "^$ds " "$WORK/datasets.txt")
  for th in "${TH[@]}"; do for st in "${ST[@]}"; do
    awk -F'\t' -v ds="$ds" -v st="$st" -v th="$th" '$1 == ds && $2 == st && $3 == th' "$RESULTS" | sort -t$'\t' -k5,5n |
    awk -F'\t' -v n="$n" -v corr="$corr" -v pages="$pages" '
      { w[++k] = $5; c += $6; if ($7 > rss) rss = $7; ch = $8; sv += $9; ds = $1; st = $2; th = $3 }
      END {
        if (k == 0) exit
        med = (k % 2) ? w[(k + 1) / 2] : (w[k / 2] + w[k / 2 + 1]) / 2
        label = st; if (st == "auto") label = "auto (chose " ch ")"
        printf "| %s | %d | %s | %s | %d | %s | %.2f (%.2f-%.2f) | %.0f | %.2f | %.2f | %.0f |\n",
          ds, n, corr, pages, th, label, med, w[1], w[k], n / med, (sv / k) / (n / 1e6), (c / k) / (n / 1e6), rss / 1024
      }'
  done; done
done
