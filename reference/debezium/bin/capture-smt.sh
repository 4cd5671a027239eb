#!/usr/bin/env bash
# Capture Debezium's output with single message transforms (ExtractNewRecordState, ByLogicalTableRouter,
# RegexRouter, Connect predicates) applied, for pgseam's transform goldens.
#   capture-smt.sh [NAME...]   no NAME: every capture; each one recreates database "smt" (sql/smt_schema.sql),
#                              snapshots it on its own slot, runs sql/smt_stream.sql, then a barrier row.
# Output: ${GOLDEN_DIR:-$DBZPEER_HOME/golden}/smt/NAME.jsonl (+ NAME.log). Requires bin/setup.sh, bin/pg.sh start.
set -euo pipefail
. "$(dirname "$0")/common.sh"
G=$(abspath "${GOLDEN_DIR:-$W/golden}")/smt
cd "$ROOT"
PG=bin/pg.sh; DBZ=bin/dbzpeer.sh; DB=smt
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
  $PG psql -d $DB -q -f sql/smt_schema.sql
  rm -rf "$W/state/$name"
  $DBZ start "$name" --out "$G/$name.jsonl" database.dbname=$DB slot.name=smt publication.name=smt_pub "$@"
  $DBZ wait-ready "$name" 180
  $PG psql -d $DB -q -v ON_ERROR_STOP=1 -f sql/smt_stream.sql
  $PG psql -d $DB -q -c "INSERT INTO barrier(note) VALUES ('$name')"
  for _ in $(seq 1 300); do grep -q "\"note\":\"$name\"" "$G/$name.jsonl" 2>/dev/null && break; sleep 0.2; done
  $DBZ wait-idle "$name" 3000 300
  $DBZ stop "$name"
  cp "$W/logs/$name.stderr" "$G/$name.log"
  echo "    $(wc -l < "$G/$name.jsonl") lines"
}
U="transforms.unwrap.type=io.debezium.transforms.ExtractNewRecordState"
# the StarRocks recipe
capture unwrap_rewrite transforms=unwrap $U transforms.unwrap.delete.tombstone.handling.mode=rewrite transforms.unwrap.add.fields=op,source.ts_ms
capture unwrap_rewrite_noschema converter.schemas.enable=false transforms=unwrap $U transforms.unwrap.delete.tombstone.handling.mode=rewrite transforms.unwrap.add.fields=op,source.ts_ms
capture unwrap_default transforms=unwrap $U transforms.unwrap.add.headers=op,source.ts_ms,db,source.snapshot,transaction.id
capture unwrap_default_simple_headers header.converter.class=org.apache.kafka.connect.storage.SimpleHeaderConverter transforms=unwrap $U transforms.unwrap.add.headers=op,source.ts_ms,db,source.snapshot,transaction.id
capture unwrap_fields transforms=unwrap $U transforms.unwrap.delete.tombstone.handling.mode=rewrite-with-tombstone \
  "transforms.unwrap.add.fields=op,table,source.lsn:pos,ts_ms,source.snapshot,source.xmin,transaction.id,nosuch" transforms.unwrap.add.fields.prefix=meta_ \
  transforms.unwrap.add.headers=lsn:LSN,op transforms.unwrap.add.headers.prefix=
capture unwrap_drop transforms=unwrap $U transforms.unwrap.delete.tombstone.handling.mode=drop transforms.unwrap.route.by.field=name
capture unwrap_delete_to_tombstone converter.schemas.enable=false transforms=unwrap $U transforms.unwrap.delete.tombstone.handling.mode=delete-to-tombstone transforms.unwrap.add.fields=op
capture unwrap_route transforms=unwrap,route $U transforms.unwrap.delete.tombstone.handling.mode=rewrite transforms.unwrap.add.fields=op,source.ts_ms \
  transforms.route.type=org.apache.kafka.connect.transforms.RegexRouter 'transforms.route.regex=([^.]+)\.public\.(.*)' 'transforms.route.replacement=$1_$2_cdc'
capture predicates transforms=unwrap,route,route2 $U transforms.unwrap.predicate=isTomb transforms.unwrap.negate=true \
  transforms.route.type=org.apache.kafka.connect.transforms.RegexRouter 'transforms.route.regex=.*\.(orders_.)' 'transforms.route.replacement=orders.$1' transforms.route.predicate=isOrders \
  transforms.route2.type=org.apache.kafka.connect.transforms.RegexRouter 'transforms.route2.regex=(.*)' 'transforms.route2.replacement=$1.other' transforms.route2.predicate=isOrders transforms.route2.negate=true \
  predicates=isTomb,isOrders,hasKey predicates.isTomb.type=org.apache.kafka.connect.transforms.predicates.RecordIsTombstone \
  predicates.isOrders.type=org.apache.kafka.connect.transforms.predicates.TopicNameMatches 'predicates.isOrders.pattern=dbz\.public\.orders_.*' \
  predicates.hasKey.type=org.apache.kafka.connect.transforms.predicates.HasHeaderKey predicates.hasKey.name=__debezium.newkey
capture header_predicate transforms=unwrap $U transforms.unwrap.predicate=hasKey \
  predicates=hasKey predicates.hasKey.type=org.apache.kafka.connect.transforms.predicates.HasHeaderKey predicates.hasKey.name=__debezium.newkey
capture logical_router transforms=Reroute transforms.Reroute.type=io.debezium.transforms.ByLogicalTableRouter \
  'transforms.Reroute.topic.regex=(.*)\.public\.orders_(.*)' 'transforms.Reroute.topic.replacement=$1.orders_all'
capture logical_router_key transforms=Reroute,unwrap transforms.Reroute.type=io.debezium.transforms.ByLogicalTableRouter \
  'transforms.Reroute.topic.regex=(.*)\.public\.orders_(.*)' 'transforms.Reroute.topic.replacement=$1.orders_all' \
  transforms.Reroute.key.field.name=shard 'transforms.Reroute.key.field.regex=.*orders_(.*)' 'transforms.Reroute.key.field.replacement=$1' \
  $U transforms.unwrap.delete.tombstone.handling.mode=rewrite
capture logical_router_nounique converter.schemas.enable=false transforms=Reroute transforms.Reroute.type=io.debezium.transforms.ByLogicalTableRouter \
  'transforms.Reroute.topic.regex=(.*)\.public\.(items|orders_a)' 'transforms.Reroute.topic.replacement=$1.merged' transforms.Reroute.key.enforce.uniqueness=false
echo "done: $(ls "$G"/*.jsonl | wc -l) files in $G"
