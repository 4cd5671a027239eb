#!/usr/bin/env bash
# bench/walsender.sh: where a backlog drain's time goes, pg_recvlogical against pgseam with the
# null sink, seen from the server: the walsender's CPU-seconds (/proc/<pid>/stat, sampled every
# 0.5 s with its sent and flush LSNs from pg_stat_replication) beside each consumer's wall time
# and its own user/sys CPU (/usr/bin/time). Two repetitions, each pg_recvlogical then pgseam,
# back to back on their own slots over the same WAL; in the second repetition pgseam runs with
# the environment in PS_ENV2 (e.g. PS_ENV2=TOKIO_WORKER_THREADS=1). Run by hand; results in
# BENCHMARKS.md ("Decoder and streaming against pg_recvlogical").
#
#   [N=1000000] [PS_ENV2=VAR=value] bench/walsender.sh
#
# Needs the release pgseam and pgseam-dev (cargo build --release -p pgseam -p pgseam-testkit).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BENCH_DB=postgres
PGSEAM=$TARGET/release/pgseam
bench_require "$PGSEAM" "$DEV"
W=$(mktemp -d /tmp/repl3-drain.XXXXXX); chmod 755 $W
trap 'pg_stop; rm -rf $W' EXIT
pg_start "$W/pg" 'shared_buffers = 512MB' 'max_wal_size = 8GB' 'wal_sender_timeout = 0'
N=${N:-1000000}
create_bench_table bench_ins
Q -c "CREATE PUBLICATION dbz_publication FOR ALL TABLES"
files() {
  mkdir -p $W/$1
  worker_props "$W/$1/worker.properties" "offset.storage.file.filename=$W/$1/offsets.json" "pgseam.sink=null"
  connector_props "$W/$1/connector.properties" "slot.name=$1" "table.include.list=public.bench_ins" "snapshot.mode=no_data"
}
for r in 1 2; do
  pg_recvlogical -h 127.0.0.1 -p $PG_port -U postgres -d postgres -S rl$r -P pgoutput --create-slot
  files ps$r; RUST_LOG=info $PGSEAM standalone $W/ps$r/worker.properties $W/ps$r/connector.properties 2>$W/ps$r/log & P=$!
  until grep -q lsn_proc $W/ps$r/offsets.json 2>/dev/null; do sleep 0.05; done; kill $P; wait $P || true
done
single_tx_procedure bench_ins
Q -c "SET synchronous_commit = off" -c "CALL single_tx($N)" -c CHECKPOINT
END=$(Q -c "SELECT pg_current_wal_lsn()")
echo "end $END; load $(cut -d' ' -f1-3 /proc/loadavg)"
ws_cpu() {  # walsender pid -> cpu seconds
  awk -v hz=$(getconf CLK_TCK) '{printf "%.2f", ($14+$15)/hz}' /proc/$1/stat 2>/dev/null || echo "?"
}
watch_ws() {  # APP: sample walsender cpu + sent/flush every 0.5 s into $W/ws.log until killed
  local app=$1 pid=""
  while :; do
    line=$(Q -c "SELECT pid, sent_lsn, flush_lsn FROM pg_stat_replication WHERE application_name = '$app'" 2>/dev/null || true)
    if [ -n "$line" ]; then pid=${line%%|*}; echo "$(date +%s.%N | cut -c1-14) $line cpu=$(ws_cpu $pid)"; fi
    sleep 0.5
  done
}
for r in 1 2; do
  t0=$(date +%s.%N)
  watch_ws pg_recvlogical > $W/ws_rl$r.log & WP=$!
  /usr/bin/time -f '%e %U %S' -o $W/t_rl$r pg_recvlogical -h 127.0.0.1 -p $PG_port -U postgres -d postgres -S rl$r --start -o proto_version=1 -o publication_names=dbz_publication -E $END -f /dev/null
  kill $WP; t1=$(date +%s.%N)
  echo "pg_recvlogical #$r: $(echo "$t1 - $t0" | bc) s (wall user sys: $(cat $W/t_rl$r)); walsender: $(tail -1 $W/ws_rl$r.log)"
  [ $r = 2 ] && PS_ENV=${PS_ENV2:-X=1}
  t0=$(date +%s.%N)
  watch_ws pgseam-bench > $W/ws_ps$r.log & WP=$!
  env ${PS_ENV:-X=1} RUST_LOG=info /usr/bin/time -f '%e %U %S' -o $W/t_ps$r $PGSEAM standalone $W/ps$r/worker.properties $W/ps$r/connector.properties 2>>$W/ps$r/log & P=$!
  until [ "$(Q -c "SELECT confirmed_flush_lsn >= '$END' FROM pg_replication_slots WHERE slot_name = 'ps$r'")" = t ]; do sleep 0.05; done
  t1=$(date +%s.%N); kill $WP
  echo "pgseam-null #$r: $(echo "$t1 - $t0" | bc) s; walsender: $(tail -1 $W/ws_ps$r.log)"
  kill $(pgrep -P $P) 2>/dev/null || true; wait $P || true; echo "  pgseam time: $(cat $W/t_ps$r)"
  echo "  walsender samples (t sent flush cpu):"; awk '{print "   ", $0}' $W/ws_ps$r.log | tail -8
  echo "  rl samples:"; awk '{print "   ", $0}' $W/ws_rl$r.log | tail -4
done
