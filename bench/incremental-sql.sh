#!/usr/bin/env bash
# Where an incremental snapshot's time goes on the server (run by hand): replays the SQL of
# every window of a signalled snapshot of `bench` (1M rows, bench_schema.sql) for each window
# size, on one psql session with synchronous_commit=local as pgseam's snapshot session:
#   reads  the key boundary query (`… ORDER BY id OFFSET n-1 LIMIT 1`) + binary COPY of the range
#   marks  the low watermark (a transactional pg_logical_emit_message committed with
#          synchronous_commit=off, as pgseam's since it stopped waiting for that flush; set
#          LOW_SYNC=1 for the older synchronous one), the xip-list query, the high watermark:
#          two commits per window, one of them waiting for its WAL flush
#   both   what one pgseam window costs the server, in pgseam's order
# and prints `chunk=… part=… windows=… seconds=…` lines. Without pgseam or a stream: the time the
# stream takes to bring the high watermark back is not in it.
#
# usage: bench/incremental-sql.sh PORT [CHUNK...]   (database `bench`, user postgres)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PG_port=$1; shift
export PGPASSWORD=postgres
LOW_ASYNC=", set_config('synchronous_commit', 'off', true)"
[ -n "${LOW_SYNC:-}" ] && LOW_ASYNC=""
WORK=$(mktemp -d /tmp/pgseam-bench-incsql.XXXX)
trap 'rm -rf "$WORK"' EXIT
for CHUNK in "${@:-1024}"; do
  bounds=$(Q -c "SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) rn FROM bench) s
                 WHERE rn % $CHUNK = 0 ORDER BY id" | paste -sd' ')
  gen() { # part
    echo "SET synchronous_commit = local;"
    local prev="" b w
    for b in $bounds ""; do
      w=${prev:+"WHERE id > $prev"}
      if [ "$1" != reads ]; then
        echo "SELECT pg_logical_emit_message(true, 'bench', 'low:$prev')$LOW_ASYNC;"
        echo "SELECT coalesce(array_agg(x::text), '{}') FROM pg_snapshot_xip(pg_current_snapshot()) x;"
      fi
      if [ "$1" != marks ]; then
        # Aliased, as pgseam's: `ORDER BY id` must not name the text output column.
        echo "SELECT id::text AS pgseam_key0 FROM bench $w ORDER BY id OFFSET $((CHUNK - 1)) LIMIT 1;"
        if [ -n "$b" ]; then
          echo "COPY (SELECT * FROM bench ${w:-WHERE true} AND id <= $b) TO STDOUT (FORMAT binary);"
        else
          echo "COPY (SELECT * FROM bench $w) TO STDOUT (FORMAT binary);"
        fi
      fi
      if [ "$1" != reads ]; then echo "SELECT pg_logical_emit_message(true, 'bench', 'high:$prev');"; fi
      prev=$b
    done
  }
  for part in reads marks both; do
    gen "$part" > "$WORK/$part.sql"
    s=$(date +%s.%N); Q -f "$WORK/$part.sql" > /dev/null; e=$(date +%s.%N)
    echo "chunk=$CHUNK part=$part windows=$(( $(echo "$bounds" | wc -w) + 1 )) seconds=$(echo "$e - $s" | bc)"
  done
done
s=$(date +%s.%N); Q -c "COPY (SELECT * FROM bench) TO STDOUT (FORMAT binary)" > /dev/null; e=$(date +%s.%N)
echo "whole-table COPY seconds=$(echo "$e - $s" | bc)"
