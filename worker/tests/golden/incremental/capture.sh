#!/usr/bin/env bash
# Capture Debezium 3.6.3's incremental snapshot records for worker/tests/it/incremental_golden.rs.
#   DBZPEER_HOME=/work/main/.dbzpeer worker/tests/golden/incremental/capture.sh
# Needs the reference PostgreSQL running (reference/debezium/bin/pg.sh start, port ${PGPEER_PORT:-54329})
# and the harness jars under $DBZPEER_HOME. Writes debezium.jsonl (+ .log) next to this script;
# state goes to a scratch dir.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REF=$(cd "$HERE/../../../../reference/debezium" && pwd)
JARS=${DBZPEER_HOME:?}
PORT=${PGPEER_PORT:-54329}
SCRATCH=$(mktemp -d /tmp/incgold.XXXXXX)
export PGPASSWORD=postgres
P() { psql -h 127.0.0.1 -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
P -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'incgold' AND NOT active" >/dev/null
P -d postgres -c "DROP DATABASE IF EXISTS incgold" -c "CREATE DATABASE incgold"
P -d incgold -f "$HERE/schema.sql"
D() { DBZPEER_HOME=$SCRATCH DBZ_CP="$JARS/libs/*:$JARS/classes" PGPEER_PORT=$PORT JAVA_OPTS="-Xms256m -Xmx512m" "$REF/bin/dbzpeer.sh" "$@"; }
D start incgold --out "$SCRATCH/out.jsonl" database.dbname=incgold slot.name=incgold slot.drop.on.stop=true \
  snapshot.mode=no_data table.include.list=public.items,public.dbz_signal \
  signal.data.collection=public.dbz_signal incremental.snapshot.chunk.size=2
D wait-ready incgold 180
P -d incgold -f "$HERE/stream.sql"
# 1 streamed insert + signal + streamed update + 6 snapshot rows + 1 streamed delete on items, plus the signal-table rows
for _ in $(seq 1 600); do grep -q '"name":"done"' "$SCRATCH/out.jsonl" 2>/dev/null && break; sleep 0.2; done
D wait-idle incgold 3000 120
D stop incgold
cp "$SCRATCH/out.jsonl" "$HERE/debezium.jsonl"
cp "$SCRATCH/logs/incgold.stderr" "$HERE/debezium.log"
rm -rf "$SCRATCH"
wc -l "$HERE/debezium.jsonl"
