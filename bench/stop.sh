#!/usr/bin/env bash
# bench/stop.sh: how long a stop (SIGTERM) takes in the middle of a heavy snapshot into the
# broker (docs/faults.md, "Stopping under load"). Run by hand, never in CI.
#
#   bench/stop.sh [--rows N] [--wait S] [--work DIR]
#
#   --rows N    rows of the `big` table (default 1000000, about 240 MB)
#   --wait S    seconds between `snapshot started` and the SIGTERM (default 8)
#   Environment: PGSEAM_BIN (default $CARGO_TARGET_DIR/debug/pgseam), BEFORE_BIN (optional:
#   another pgseam binary, e.g. an older build, run with the same settings right after each
#   PGSEAM_BIN run), DEV_BIN (pgseam-dev, default beside PGSEAM_BIN), PGSEAM_BROKER_BIN.
#
# For each producer setting below, a fresh connector (own slot, topic prefix and offset file)
# snapshots `big` with snapshot.max.threads=2 into the tansu broker (Connect JSON with schemas);
# --wait seconds after `snapshot started` it gets SIGTERM, and the time until the process has
# exited is printed (with the load average: the machine may be shared), with the number of
# deliveries the stop abandoned when it logs one:
#   default     the broker keeps up
#   slow        producer.batch.size=4000: small produce requests, the broker falls behind
#   slow-1GiB   the same with pgseam.memory.budget.bytes=1073741824: a deep librdkafka queue
set -euo pipefail

ROWS=1000000; WAIT=8; WORK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2;;
    --wait) WAIT=$2; shift 2;;
    --work) WORK=$2; shift 2;;
    -h|--help) sed -n '2,22p' "$0"; exit 0;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
PGSEAM=${PGSEAM_BIN:-$TARGET/debug/pgseam}
BEFORE=${BEFORE_BIN:-}
DEV=${DEV_BIN:-$(dirname "$PGSEAM")/pgseam-dev}
for b in "$PGSEAM" "$DEV" ${BEFORE:+"$BEFORE"}; do
  [ -x "$b" ] || { echo "missing $b (see --help)" >&2; exit 1; }
done
if [ -z "$WORK" ]; then WORK=$(mktemp -d /tmp/pgseam-stop.XXXXXX); fi
mkdir -p "$WORK"; chmod 755 "$WORK"; WORK=$(cd "$WORK" && pwd)
log() { echo "[$(date +%T)] $*" >&2; }

PG_DIR=$WORK/pg; BROKER_DIR=$WORK/broker; PID=""
cleanup() {
  set +e
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
  "$DEV" broker stop --dir "$BROKER_DIR" >/dev/null 2>&1
  "$DEV" postgres stop --dir "$PG_DIR" >/dev/null 2>&1
  rm -rf "$PG_DIR" "$BROKER_DIR" "$WORK/runs"
}
trap cleanup EXIT
eval "$("$DEV" postgres start --dir "$PG_DIR" | sed 's/^/PG_/')"
eval "$("$DEV" broker start --dir "$BROKER_DIR" | sed 's/^/BROKER_/')"
export PGPASSWORD=postgres
psql -X -q -h 127.0.0.1 -p "$PG_port" -U postgres -d postgres -c "CREATE DATABASE stop" >/dev/null
log "loading big ($ROWS rows)"
psql -X -q -h 127.0.0.1 -p "$PG_port" -U postgres -d stop -v ON_ERROR_STOP=1 \
  -c "CREATE TABLE big (id bigint PRIMARY KEY, a text, b text, c bigint, d timestamptz)" \
  -c "INSERT INTO big SELECT g, md5(g::text), repeat('x', 150), g * 7, now() FROM generate_series(1, $ROWS) g" \
  -c "VACUUM ANALYZE big"

run() {   # BINARY NAME EXTRA-WORKER-LINES
  local dir=$WORK/runs/$2
  mkdir -p "$dir"
  cat > "$dir/worker.properties" <<EOF
bootstrap.servers=$BROKER_bootstrap
offset.storage.file.filename=$dir/offsets.dat
listeners=http://127.0.0.1:0
$3
EOF
  cat > "$dir/connector.properties" <<EOF
name=$2
connector.class=io.debezium.connector.postgresql.PostgresConnector
database.hostname=127.0.0.1
database.port=$PG_port
database.user=postgres
database.password=postgres
database.dbname=stop
topic.prefix=$2
plugin.name=pgoutput
slot.name=$2
publication.name=$2
snapshot.max.threads=2
EOF
  RUST_LOG=info "$1" standalone "$dir/worker.properties" "$dir/connector.properties" > "$dir/pgseam.log" 2>&1 &
  PID=$!
  until grep -q "snapshot started" "$dir/pgseam.log"; do
    kill -0 "$PID" 2>/dev/null || { tail -20 "$dir/pgseam.log" >&2; exit 1; }
    sleep 0.1
  done
  sleep "$WAIT"
  local t0 t1 rc=0
  t0=$(date +%s%N)
  kill -TERM "$PID"
  wait "$PID" || rc=$?
  t1=$(date +%s%N)
  PID=""
  local abandoned
  abandoned=$(grep 'deliveries still outstanding' "$dir/pgseam.log" | grep -o ' outstanding=[0-9]*' | head -1 | cut -d= -f2 || true)
  printf '| %s | %s | %.2f s | %s | exit %s | load %s |\n' "$2" "$(basename "$1")" \
    "$(echo "($t1 - $t0) / 1000000000" | bc -l)" "${abandoned:-none logged}" "$rc" \
    "$(cut -d' ' -f1 /proc/loadavg)"
  psql -X -q -h 127.0.0.1 -p "$PG_port" -U postgres -d stop \
    -c "SELECT pg_drop_replication_slot('$2')" >/dev/null
}

echo "| setting | binary | stop took | deliveries abandoned | status | load |"
echo "|---|---|---|---|---|---|"
n=0
for setting in default slow slow-1GiB; do
  case $setting in
    default) extra="";;
    slow) extra="producer.batch.size=4000";;
    slow-1GiB) extra=$'producer.batch.size=4000\npgseam.memory.budget.bytes=1073741824';;
  esac
  n=$((n + 1))
  run "$PGSEAM" "after_$n" "$extra"
  if [ -n "$BEFORE" ]; then run "$BEFORE" "before_$n" "$extra"; fi
done
