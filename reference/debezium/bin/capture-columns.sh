#!/usr/bin/env bash
# Capture Debezium's output with column shaping: column.include.list / column.exclude.list,
# column.mask.with.N.chars, column.mask.hash[.v2].<algo>.with.salt.<salt>, column.truncate.to.N.chars
# and message.key.columns; column/datatype.propagate.source.type (captures propagate_*); and schema.name.adjustment.mode, field.name.adjustment.mode and
# topic.delimiter (captures names_*), for pgseam's column goldens.
#   capture-columns.sh [NAME...]   no NAME: every capture; each one recreates database "cols"
#                                  (sql/columns_schema.sql), snapshots it on its own slot, runs
#                                  sql/columns_stream.sql, then a barrier row.
# Output: ${GOLDEN_DIR:-$DBZPEER_HOME/golden}/columns/NAME.jsonl (+ NAME.log). Requires bin/setup.sh, bin/pg.sh start.
set -euo pipefail
. "$(dirname "$0")/common.sh"
G=$(abspath "${GOLDEN_DIR:-$W/golden}")/columns
cd "$ROOT"
PG=bin/pg.sh; DBZ=bin/dbzpeer.sh; DB=cols
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
  $PG psql -d $DB -q -f "sql/${SQL:-columns}_schema.sql"
  rm -rf "$W/state/$name"
  $DBZ start "$name" --out "$G/$name.jsonl" database.dbname=$DB slot.name=cols publication.name=cols_pub "$@"
  $DBZ wait-ready "$name" 180
  $PG psql -d $DB -q -v ON_ERROR_STOP=1 -f "sql/${SQL:-columns}_stream.sql"
  $PG psql -d $DB -q -c "INSERT INTO barrier(note) VALUES ('$name')"
  for _ in $(seq 1 300); do grep -q "\"note\":\"$name\"" "$G/$name.jsonl" 2>/dev/null && break; sleep 0.2; done
  $DBZ wait-idle "$name" 3000 300
  $DBZ stop "$name"
  cp "$W/logs/$name.stderr" "$G/$name.log"
  echo "    $(wc -l < "$G/$name.jsonl") lines"
}
# exclude list (a key column too), masks, truncation, hashing, message.key.columns
capture columns_exclude \
  'column.exclude.list=public.cust.extra,.*\.secret,public.hidden_pk.id,public.mixed.other' \
  'column.mask.with.5.chars=public.cust.ssn,public.cust.score,public.cust.feeling,public.cust.email' \
  'column.truncate.to.3.chars=public.cust.name,public.cust.code,public.cust.photo,public.cust.score,public.cust.email' \
  'column.mask.hash.SHA-256.with.salt.pepper=public.cust.bio' \
  'column.mask.hash.v2.MD5.with.salt.salt2=public.orders_def.comment' \
  'message.key.columns=public.orders:cust_id,region;public.nokey:a;public.orders_def:cust_id'
# include list: whole tables, single columns, a table with no included column; message key outside it
capture columns_include \
  'column.include.list=public\.cust\.(id|name|email),public.orders.*,public.nokey.b,public.barrier.*,public.orders_def.region,public.Mixed.val' \
  'message.key.columns=public.nokey:a'
# name adjustment and the topic delimiter (sql/names_*.sql)
SQL=names capture names_avro schema.name.adjustment.mode=avro field.name.adjustment.mode=avro
SQL=names capture names_avro_unicode schema.name.adjustment.mode=avro_unicode field.name.adjustment.mode=avro_unicode
SQL=names capture names_delimiter topic.delimiter=_ provide.transaction.metadata=true
# source type propagation (sql/propagate_*.sql): by column name, by data type, and both at once
SQL=propagate capture propagate_column \
  'column.propagate.source.type=public\.ptypes\..*,public.other.vc20'
SQL=propagate capture propagate_datatype \
  'datatype.propagate.source.type=.+\.varchar,.+\.NUMERIC,.+\._int4,.+\.bpchar,.+\.mood'
SQL=propagate capture propagate_both \
  'column.propagate.source.type=public.other.id,public.other.vc20' 'datatype.propagate.source.type=.+\.numeric' \
  'column.truncate.to.3.chars=public.other.vc20'
echo "done: $(ls "$G"/*.jsonl | wc -l) files in $G"
