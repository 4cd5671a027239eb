#!/usr/bin/env bash
# Issue 9's tests 1-4 and its benchmark at full scale (run by hand, not in CI): a signalled
# incremental snapshot of the 1M-row `bench` table (reference/debezium/sql/bench_schema.sql's
# table, bench/lib.sh load_bench, plus a `ver` column) while writers insert,
# update and delete `bench` rows throughout, all in one run on one PostgreSQL and one tansu:
#
#   kill     pgseam into tansu, `snapshot.mode=no_data`; the signal; `kill -9` of pgseam
#            --kill-after seconds into the snapshot, a restart, again after the restart, and a
#            restart that finishes it (--kills times in all). Then, with pgseam and the writers
#            still running, `pgseam verify --tables public.bench` (the topic applied as a
#            primary-key table equals the source at one LSN; duplicates and per-key order), the
#            writers stop, pgseam stops, and `pgseam-bench changes` reads the topic again: every
#            update's `ver` is the previous one + 1 (no change lost, per-key order), every
#            insert comes first, every incremental read carries the key's version at its window,
#            and every one of the 1M keys had a record. This runs first: the checker assumes
#            every `bench` row has `ver = 0` when its connector starts.
#   null     the same snapshot, no kills, pgseam's null sink (encoded, dropped): signal to
#            "the incremental snapshot is complete".
#   broker   the same into tansu, with commit → consumer latency of a latency table the writers
#            insert into (pgseam-bench latency-live): 15 s of streaming alone, then during the
#            snapshot.
#   sql      bench/incremental-sql.sh: the SQL of every window alone, no writers, in particular
#            the watermark commits' share, which depends on --fsync.
#   debezium Debezium 3.6.3's incremental snapshot of the same table with the same writers
#            (reference/debezium harness, embedded engine, JsonConverter, `insert_insert`
#            watermarks in the signaling table, its default): its events go to a pipe read by
#            a small Python reader that counts the incremental reads and stamps the latency
#            table's events as they arrive (commit → handed over by the engine; no broker:
#            Debezium's counterpart of the null sink). Signal to its log's COMPLETED
#            notification; the reader's time of the last incremental read.
#
# Writers (one psql session, server-side loop, each statement its own transaction): per round an
# insert of a new key, an update `ver = ver + 1` of a random key, a delete of a random key and an
# insert into the latency table, then a 2 ms sleep; the achieved rate is printed.
#
# usage: bench/incremental-kill.sh [--chunk 1024] [--fsync off|on] [--kills 2] [--kill-after 3]
#                                  [--rows 1000000] [--debezium yes|no] [--record yes|no]
#                                  [--dbz-poll-ms 500]
# --dbz-poll-ms is Debezium's `poll.interval.ms` (its default 500): its queue hands a batch over
# when it holds `max.batch.size` (2048) events or after that long, so at a low event rate it
# sets Debezium's streaming latency.
# env:   PGSEAM_BROKER_BIN (tansu), CARGO_TARGET_DIR (default ./target), DBZPEER_HOME (the
#        Debezium harness' jars, e.g. /work/main/.dbzpeer; needed for --debezium yes),
#        BENCH_BUILD=no (run the release binaries already built)
# Appends the results with the command to BENCHMARKS.md unless --record no. Exits 1 when verify
# or the change checker finds a difference.
set -euo pipefail
CHUNK=1024 FSYNC=off KILLS=2 KILL_AFTER=3 ROWS_WANTED=1000000 DEBEZIUM=yes RECORD=yes DBZ_POLL_MS=500
ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --chunk) CHUNK=$2;; --fsync) FSYNC=$2;; --kills) KILLS=$2;; --kill-after) KILL_AFTER=$2;;
    --rows) ROWS_WANTED=$2;; --debezium) DEBEZIUM=$2;; --record) RECORD=$2;;
    --dbz-poll-ms) DBZ_POLL_MS=$2;;
    *) sed -n '2,40p' "$0" >&2; exit 2;;
  esac
  shift 2
done
case "$FSYNC" in on|off) ;; *) echo "--fsync on|off" >&2; exit 2;; esac
. "$(dirname "$0")/lib.sh"
DBZ_ROOT=$REPO/reference/debezium
WORK=$(mktemp -d /tmp/pgseam-bench-inckill.XXXX)
chmod 777 "$WORK"

bench_build -p pgseam -p pgseam-testkit -p pgseam-integration-tests --bins
PGSEAM="$TARGET/release/pgseam"
BENCH="$TARGET/release/pgseam-bench"
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${DBZ_STARTED:-}" ]; then
    DBZPEER_HOME=$WORK/dbz "$DBZ_ROOT/bin/dbzpeer.sh" stop incdbz 20 >/dev/null 2>&1 || true
  fi
  bench_stop_servers
  # Keep the logs and results, not the data.
  rm -rf "$WORK/pg" "$WORK/broker" "$WORK/dbz/state"
  echo "logs in $WORK" >&2
}
trap cleanup EXIT

pg_start "$WORK/pg" "fsync = $FSYNC" "max_wal_size = 4GB"
broker_start "$WORK/broker"
pg_create_db bench
load_bench "$ROWS_WANTED"
Q -c "VACUUM ANALYZE bench" -c "CHECKPOINT"
ROWS=$(Q -c "SELECT count(*) FROM bench")
churn_schema "$ROWS"
signal_tables
Q -c "CREATE PUBLICATION dbz_publication FOR ALL TABLES"
log "$ROWS rows of bench; fsync=$(Q -c 'SHOW fsync')"

write_config() { # name sink mode
  worker_props "$WORK/$1.worker" "offset.storage.file.filename=$WORK/$1.offsets" "pgseam.sink=$2"
  connector_props "$WORK/$1.connector" "name=$1" "topic.prefix=$1" "slot.name=$1" "publication.name=$1" \
    "publication.autocreate.mode=all_tables" "table.include.list=public.bench,public.lat0,public.lat" \
    "snapshot.mode=$3" "signal.data.collection=public.dbz_signal" "incremental.snapshot.chunk.size=$CHUNK"
}
drop_slot() { Q -c "SELECT pg_drop_replication_slot('$1')" >/dev/null; }
signal() { # id
  Q -c "INSERT INTO dbz_signal VALUES ('$1', 'execute-snapshot', '{\"data-collections\": [\"public.bench\"], \"type\": \"incremental\"}')"
}
# Writers (bench/lib.sh churn_writers): inserts, updates and deletes of `bench` (the snapshot's
# table) and inserts into a latency table, until stop_writers, which logs the rounds per second.
stored_progress() { # name: the stored incremental snapshot's key, as `pgseam offsets show` prints it
  "$PGSEAM" offsets show "$WORK/$1.worker" 2>/dev/null | tr -d '\n\\' | grep -o '"after":\[[^]]*\]' | head -1 || true
}

# 1. kill: the snapshot with kill -9, then verify and the change checker.
write_config inckill kafka no_data
pgseam_start_named inckill; wait_log inckill "streaming started"
churn_writers lat0
sleep 2
k0=$(now); signal inckill-1
KILL_NOTES=()
for kill in $(seq 1 "$KILLS"); do
  # The first: once the signal started the snapshot; the next ones: once the restart resumed it.
  [ "$kill" = 1 ] && wait_log inckill "incremental snapshot progress"
  sleep "$KILL_AFTER"
  if grep -q "the incremental snapshot is complete" "$WORK/inckill.log"; then
    echo "the snapshot completed before kill $kill: lower --kill-after" >&2; exit 1
  fi
  kill -9 "$PGSEAM_PID"; wait "$PGSEAM_PID" || true
  progress=$(stored_progress inckill)
  log "kill $kill: stored progress $progress"
  [ -n "$progress" ] || { echo "no incremental progress stored at kill $kill" >&2; exit 1; }
  KILL_NOTES+=("kill $kill at +$(echo "$(now) - $k0" | bc | cut -c1-5) s: \`$progress\`")
  echo "=== restart $kill" >> "$WORK/inckill.log"
  pgseam_start_named inckill
  wait_log inckill "resuming the interrupted snapshot" "$kill"
done
wait_log inckill "the incremental snapshot is complete"
k1=$(now); kill_s=$(echo "$k1 - $k0" | bc)
log "snapshot with $KILLS kills: $kill_s s"
sleep 2
set +e
"$PGSEAM" verify "$WORK/inckill.worker" "$WORK/inckill.connector" --tables public.bench \
  --progress never > "$WORK/verify.txt" 2> "$WORK/verify.err"
VERIFY_RC=$?
set -e
cat "$WORK/verify.txt" >&2
stop_writers
stop_pgseam
set +e
"$BENCH" changes --bootstrap "$BOOTSTRAP" --topic inckill.public.bench --expect "$ROWS" \
  --idle-stop-s 10 --timeout-s 1800 > "$WORK/changes.txt" 2> "$WORK/changes.err"
CHANGES_RC=$?
set -e
cat "$WORK/changes.txt" "$WORK/changes.err" >&2
drop_slot inckill
ROWS_NOW=$(Q -c "SELECT count(*) FROM bench")

# 2. The windows' SQL alone, no writers (bench/incremental-sql.sh): what the watermark commits
# cost under this fsync setting ("marks"), against the reads.
"$BENCH_DIR/incremental-sql.sh" "$PG_port" "$CHUNK" > "$WORK/sql.txt"
LOW_SYNC=1 "$BENCH_DIR/incremental-sql.sh" "$PG_port" "$CHUNK" > "$WORK/sql-sync.txt"
log "window SQL: $(tr '\n' ' ' < "$WORK/sql.txt"); with a synchronous low watermark: $(tr '\n' ' ' < "$WORK/sql-sync.txt")"

# 3. null and broker: no kills.
incremental() { # name sink
  write_config "$1" "$2" no_data
  pgseam_start_named "$1"; wait_log "$1" "streaming started"
  if [ "$2" = kafka ]; then
    latency_reader "$1.public.lat0" "$WORK/$1.lat0" 1800
    churn_writers lat0; sleep 15; stop_writers; wait "$LAT_PID" || true
    latency_reader "$1.public.lat" "$WORK/$1.lat" 1800
  fi
  churn_writers lat
  sleep 2
  local s0; s0=$(now)
  signal "$1"
  wait_log "$1" "the incremental snapshot is complete"
  local s1; s1=$(now)
  stop_writers
  echo "$WRITE_RATE" > "$WORK/$1.rate"
  if [ "$2" = kafka ]; then wait "$LAT_PID" || true; fi
  stop_pgseam
  drop_slot "$1"
  echo "$s1 - $s0" | bc > "$WORK/$1.seconds"
  log "$1: $(cat "$WORK/$1.seconds") s"
}
incremental incnull null
incremental incbroker kafka

# 4. Debezium, same table, same writers.
dbz_s="" DBZ_LINE=""
if [ "$DEBEZIUM" = yes ]; then
  mkdir -p "$WORK/dbz"
  DBZ=(env DBZPEER_HOME="$WORK/dbz" DBZ_CP="${DBZPEER_HOME:?set DBZPEER_HOME to the directory of the harness jars}/libs/*:$DBZPEER_HOME/classes"
       PGPEER_PORT="$PG_port" "$DBZ_ROOT/bin/dbzpeer.sh")
  mkfifo "$WORK/dbz.pipe"
  python3 - "$WORK/dbz.pipe" > "$WORK/dbz.reader" <<'PY' &
import json, sys, time
lat = {"lat0": [], "lat": []}
inc = 0; last_inc = 0.0; records = 0
with open(sys.argv[1], "rb") as pipe:
    for line in pipe:
        records += 1
        if b'"snapshot":"incremental"' in line:
            inc += 1; last_inc = time.time(); continue
        for table in ("lat0", "lat"):
            if b'"destination":"dbz.public.' + table.encode() + b'"' in line:
                now_us = time.time() * 1e6
                value = json.loads(line)["value"]
                if value is not None:
                    lat[table].append((now_us - value["source"]["ts_us"]) / 1000.0)
def pct(xs, p):
    xs = sorted(xs); return xs[round((len(xs) - 1) * p)] if xs else float("nan")
print(f"records={records} incremental_reads={inc} last_incremental_read={last_inc:.3f}")
for t, xs in lat.items():
    print(f"{t}: live_records={len(xs)} live_p50_ms={pct(xs, .5):.1f} live_p99_ms={pct(xs, .99):.1f} live_max_ms={pct(xs, 1):.1f}")
PY
  READER_PID=$!; PIDS+=("$READER_PID")
  DBZ_STARTED=1
  "${DBZ[@]}" start incdbz table.include.list=public.bench,public.lat0,public.lat,public.dbz_signal \
    converter.schemas.enable=false --mode file --out "$WORK/dbz.pipe" database.dbname=bench \
    snapshot.mode=no_data slot.name=incdbz signal.data.collection=public.dbz_signal \
    incremental.snapshot.chunk.size="$CHUNK" decimal.handling.mode=string \
    notification.enabled.channels=log poll.interval.ms="$DBZ_POLL_MS" >&2
  "${DBZ[@]}" wait-ready incdbz 300 >&2
  sleep 5 # JMX's Connected comes before the stream is open (dbzpeer.sh wait-idle)
  churn_writers lat0; sleep 15; stop_writers
  churn_writers lat; sleep 2
  d0=$(now); signal dbz-1
  until grep -q "type='COMPLETED'" "$WORK/dbz/logs/incdbz.stderr"; do
    grep -q "engine completed" "$WORK/dbz/logs/incdbz.stderr" && { tail -30 "$WORK/dbz/logs/incdbz.stderr" >&2; exit 1; }
    sleep 0.05
  done
  d1=$(now)
  stop_writers; echo "$WRITE_RATE" > "$WORK/incdbz.rate"
  sleep 5 # the latency table's last events
  "${DBZ[@]}" stop incdbz 60 >&2
  DBZ_STARTED=""
  wait "$READER_PID" || true
  cat "$WORK/dbz.reader" >&2
  dbz_s=$(echo "$d1 - $d0" | bc)
  last_read=$(grep -o 'last_incremental_read=[0-9.]*' "$WORK/dbz.reader" | cut -d= -f2)
  dbz_read_s=$(echo "$last_read - $d0" | bc)
  DBZ_READS=$(grep -o 'incremental_reads=[0-9]*' "$WORK/dbz.reader" | cut -d= -f2)
fi

RESULT=pass
[ "$VERIFY_RC" = 0 ] && [ "$CHANGES_RC" = 0 ] || RESULT=FAIL
summary() {
  echo
  echo "## Incremental snapshot under writers with kill -9, and against Debezium, $(date -u +%Y-%m-%d) — $ROWS rows of \`bench\`, windows of $CHUNK keys, fsync=$FSYNC, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "Command: \`bench/incremental-kill.sh $ARGS\` (commit $(git -C "$REPO" rev-parse --short HEAD)). One run, one PostgreSQL 15 (testkit, \`fsync = $FSYNC\`) and one tansu; the machine was shared with other engineers' builds. Writers throughout each run: insert + update (\`ver = ver + 1\`) + delete of random \`bench\` keys + an insert into the latency table, each its own transaction (rounds/s below, 4 transactions a round)."
  echo
  echo "### Tests 1-4: $KILLS× kill -9 during the snapshot — **$RESULT**"
  echo
  echo "- snapshot with $KILLS kills and restarts, signal to complete: $kill_s s; \`bench\` had $ROWS rows at the start and $ROWS_NOW at the end"
  for n in "${KILL_NOTES[@]}"; do echo "- $n"; done
  echo "- \`pgseam verify --tables public.bench\` (exit $VERIFY_RC):"
  echo '```'
  sed -n '/public.bench/,/^$/p' "$WORK/verify.txt"
  echo '```'
  echo "- \`pgseam-bench changes\` (exit $CHANGES_RC): \`$(cat "$WORK/changes.txt")\`"
  echo
  echo "### Throughput and streaming latency, same run"
  echo
  echo "| run | writers rounds/s | seconds | rows/s |"
  echo "|---|---|---|---|"
  awk -v s="$(cat "$WORK/incnull.seconds")" -v r="$ROWS_NOW" -v w="$(cat "$WORK/incnull.rate")" 'BEGIN { printf "| pgseam → null sink (signal to complete) | %s | %.2f | %.0f |\n", w, s, r / s }'
  awk -v s="$(cat "$WORK/incbroker.seconds")" -v r="$ROWS_NOW" -v w="$(cat "$WORK/incbroker.rate")" 'BEGIN { printf "| pgseam → tansu (signal to complete) | %s | %.2f | %.0f |\n", w, s, r / s }'
  if [ -n "$dbz_s" ]; then
    awk -v s="$dbz_s" -v r="$ROWS_NOW" -v w="$(cat "$WORK/incdbz.rate")" 'BEGIN { printf "| Debezium 3.6.3 → harness, no broker (signal to COMPLETED notification) | %s | %.2f | %.0f |\n", w, s, r / s }'
    awk -v s="$dbz_read_s" -v r="$DBZ_READS" 'BEGIN { printf "| Debezium 3.6.3: signal to its last incremental read (%d reads) | | %.2f | %.0f |\n", r, s, r / s }'
  fi
  echo
  echo "The windows' SQL alone (bench/incremental-sql.sh, one psql session, no writers; \`marks\` = the two watermark commits of every window, \`reads\` = boundary query + COPY, \`both\` = a whole window): \`$(tr '\n' ' ' < "$WORK/sql.txt")\`; the same with the low watermark's commit waiting for its flush too (LOW_SYNC=1: pgseam's windows before the low watermark stopped waiting): \`$(tr '\n' ' ' < "$WORK/sql-sync.txt")\`"
  echo
  echo "Commit → consumer latency of the latency table's inserts (15 s of streaming alone, then during the snapshot):"
  echo "- pgseam → tansu → consumer (pgseam-bench latency-live), alone: \`$(grep live_ "$WORK/incbroker.lat0" | head -1)\`"
  echo "- pgseam, during the snapshot: \`$(grep live_ "$WORK/incbroker.lat" | head -1)\`"
  if [ -n "$dbz_s" ]; then
    echo "- Debezium (\`poll.interval.ms=$DBZ_POLL_MS\`) → handed over by the engine (no broker), alone: \`$(grep '^lat0:' "$WORK/dbz.reader" | cut -d' ' -f2-)\`"
    echo "- Debezium, during the snapshot: \`$(grep '^lat:' "$WORK/dbz.reader" | cut -d' ' -f2-)\`"
  fi
}
if [ "$RECORD" = yes ]; then summary | tee -a "$REPO/BENCHMARKS.md"; else summary; fi
[ "$RESULT" = pass ]
