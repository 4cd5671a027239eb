#!/usr/bin/env bash
# Capture Debezium's output for more column types: bit/varbit, ltree, citext (extensions from
# PostgreSQL 15 contrib), time/timetz/timestamp/timestamptz at every precision, arrays of many
# element types, numeric NaN/±Infinity; and the key-change headers under SimpleHeaderConverter.
#   capture-types.sh [NAME...]   no NAME: every capture; each one recreates database "types"
#                                (sql/types_schema.sql; edge_*: sql/edge_schema.sql; toast_*:
#                                sql/toast_schema.sql, with snapshot.mode=no_data), snapshots
#                                it on its own slot, runs the matching _stream.sql, then a
#                                barrier row.
# Output: ${GOLDEN_DIR:-$DBZPEER_HOME/golden}/types/NAME.jsonl (+ NAME.log). Requires bin/setup.sh, bin/pg.sh start.
set -euo pipefail
. "$(dirname "$0")/common.sh"
G=$(abspath "${GOLDEN_DIR:-$W/golden}")/types
cd "$ROOT"
PG=bin/pg.sh; DBZ=bin/dbzpeer.sh; DB=types
mkdir -p "$G" "$W/state" "$W/logs"
export JAVA_OPTS=${JAVA_OPTS:--Xms512m -Xmx1g}
ONLY=" $* "
want() { [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $1 "* ]]; }
capture() {  # capture NAME [k=v ...]
  local name=$1; shift
  want "$name" || return 0
  echo "=== $name"
  $PG psql -q -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DB' AND NOT active" >/dev/null
  $PG psql -q -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
  $PG psql -d $DB -q -v ON_ERROR_STOP=1 -f "sql/${SQL:-types}_schema.sql"
  rm -rf "$W/state/$name"
  $DBZ start "$name" --out "$G/$name.jsonl" database.dbname=$DB slot.name=types publication.name=types_pub "$@"
  $DBZ wait-ready "$name" 180
  $PG psql -d $DB -q -v ON_ERROR_STOP=1 -f "sql/${SQL:-types}_stream.sql"
  $PG psql -d $DB -q -c "INSERT INTO barrier(note) VALUES ('$name')"
  for _ in $(seq 1 300); do grep -q "\"note\":\"$name\"\|note\",\"value\":$name\|\"note\":\"$name\"" "$G/$name.jsonl" 2>/dev/null && break; sleep 0.2; done
  $DBZ wait-idle "$name" 3000 300
  $DBZ stop "$name"
  cp "$W/logs/$name.stderr" "$G/$name.log"
  echo "    $(wc -l < "$G/$name.jsonl") lines"
}
# every table, Debezium's defaults (headers through JsonConverter, as the other goldens)
capture types_default
# the same with a Kafka Connect worker's default header converter: DbzPeer splices each header's
# raw bytes, so a header "value" is the raw text, not JSON
capture types_simple_headers header.converter.class=org.apache.kafka.connect.storage.SimpleHeaderConverter
# numeric NaN/±Infinity under the other decimal.handling.modes
capture nums_string decimal.handling.mode=string 'table.include.list=public.nums,public.barrier'
capture nums_double decimal.handling.mode=double 'table.include.list=public.nums,public.barrier'
# infinite and BC dates/timestamps (sql/edge_*.sql) under four time.precision.modes
SQL=edge capture edge_adaptive
SQL=edge capture edge_isostring time.precision.mode=isostring
SQL=edge capture edge_connect time.precision.mode=connect
SQL=edge capture edge_micro time.precision.mode=microseconds
# unchanged TOAST values (sql/toast_*.sql, streamed only: snapshot.mode=no_data) per handling
# mode, multi-dimensional arrays, money.fraction.digits, include.unknown.datatypes
SQL=toast capture toast_default snapshot.mode=no_data
SQL=toast capture toast_base64 snapshot.mode=no_data binary.handling.mode=base64
SQL=toast capture toast_hex snapshot.mode=no_data binary.handling.mode=hex
SQL=toast capture toast_modes snapshot.mode=no_data binary.handling.mode=base64-url-safe \
  decimal.handling.mode=string hstore.handling.mode=map time.precision.mode=isostring \
  money.fraction.digits=3 include.unknown.datatypes=true
SQL=toast capture toast_double snapshot.mode=no_data decimal.handling.mode=double \
  time.precision.mode=connect interval.handling.mode=string
SQL=toast capture toast_nano snapshot.mode=no_data money.fraction.digits=3 time.precision.mode=nanoseconds
SQL=toast capture toast_micro snapshot.mode=no_data time.precision.mode=adaptive_time_microseconds
SQL=edge capture edge_nano time.precision.mode=nanoseconds
# types without a Debezium schema under include.unknown.datatypes (snapshot and stream), bit defaults
SQL=unknown capture unknown_types include.unknown.datatypes=true
echo "done: $(ls "$G"/*.jsonl | wc -l) files in $G"
