# bench/lib.sh: what the benchmark scripts share, sourced by them (`. "$(dirname "$0")/lib.sh"`),
# never run. It defines functions and a few variables and starts nothing by itself:
#
#   paths      BENCH_DIR (this folder), REPO, TARGET ($CARGO_TARGET_DIR or ./target), DEV (the
#              release pgseam-dev), PSQL; bench_build (cargo build unless BENCH_BUILD=no),
#              bench_require (the binaries exist, or exit 1 with the build command),
#              bench_workdir (the work directory, made if not given).
#   time/log   log (stderr, [HH:MM:SS]), now (seconds.nanoseconds), now_ms, secs_between.
#   servers    pg_start DIR [CONF...] (a PostgreSQL 15 by pgseam-dev, wal_level=logical; sets
#              PG_port and PGPASSWORD), pg_stop, broker_start DIR (a tansu broker; sets
#              BROKER_bootstrap, BROKER_pid and BOOTSTRAP), broker_stop, bench_stop_servers
#              (every registered pid, then the broker and PostgreSQL started here; for traps).
#   SQL        Q (psql on database $BENCH_DB, default bench, unaligned and quiet, stopping at
#              the first error), pg_create_db NAME.
#   datasets   BENCH_COLS / BENCH_SEL, create_bench_table, single_tx_procedure (a backlog of
#              single-row transactions), load_bench N [TABLE] (the `bench` table of
#              reference/debezium/sql/bench_schema.sql, the one Debezium's side loads, with N
#              rows), wide_ddl N / load_wide N (60 columns of 12 types), load_toast N (20 kB of
#              text a row, stored out of line), load_dataset_table NAME N (one of those three),
#              signal_tables (Debezium's signaling table and the latency tables).
#   configs    worker_props FILE KEY=VALUE..., connector_props FILE KEY=VALUE...: a Connect
#              worker and a Debezium PostgresConnector with the benchmarks' common settings
#              (schemaless JSON, decimal.handling.mode=string, the local PostgreSQL and broker);
#              a KEY=VALUE replaces that key's default in place, `KEY=` leaves the key out
#              (pgseam's default), other lines are appended.
#   one pgseam for the signal/incremental benches, logging to $WORK/NAME.log: pgseam_start_named,
#              wait_log, stop_pgseam; churn_schema / churn_writers / stop_writers (inserts,
#              updates, deletes of `bench` and inserts into a latency table); latency_reader
#              (commit → consumer).
#
# Scripts keep their own options, measurements and report formats; this file only holds what
# was written out the same way in several of them.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
DEV=${DEV_BIN:-$TARGET/release/pgseam-dev}
PSQL=${PSQL:-/usr/lib/postgresql/15/bin/psql}
BENCH_DB=${BENCH_DB:-bench}
PIDS=()

# ---------------------------------------------------------------- binaries
# bench_build CARGO_BUILD_ARGS...: `cargo build --release ARGS` for the scripts that build what
# they run; BENCH_BUILD=no uses the binaries already in $TARGET/release instead.
bench_build() {
  if [ "${BENCH_BUILD:-yes}" = no ]; then return 0; fi
  cargo build --release "$@" --manifest-path "$REPO/Cargo.toml" >&2
}
# bench_require BIN...: each exists and is executable, or the script stops naming the build.
bench_require() {
  local b
  for b in "$@"; do
    [ -x "$b" ] || { echo "missing $b: cargo build --release -p pgseam -p pgseam-testkit && cargo build --release -p pgseam-integration-tests --bins (CARGO_TARGET_DIR=$TARGET)" >&2; exit 1; }
  done
}

# bench_workdir DIR NAME: prints DIR made absolute, or a new /tmp/NAME.XXXXXX when DIR is
# empty; the directory exists and the postgres user can enter it (for pg_start).
bench_workdir() {
  local dir=$1
  [ -n "$dir" ] || dir=$(mktemp -d "/tmp/$2.XXXXXX")
  mkdir -p "$dir"; chmod 755 "$dir"
  (cd "$dir" && pwd)
}

# ---------------------------------------------------------------- time and log
log() { echo "[$(date +%T)] $*" >&2; }
now() { date +%s.%N; }
now_ms() { date +%s%3N; }
# secs_between MS0 MS1: seconds from MS0 to MS1 (milliseconds), three decimals.
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b - a) / 1000}'; }

# ---------------------------------------------------------------- servers
# pg_start DIR [CONF...]: PostgreSQL 15 in DIR (initdb, wal_level=logical, its own port), each
# CONF a postgresql.conf line ('shared_buffers = 512MB'); DIR's parent must be readable by the
# postgres user (chmod 755). Sets PG_port (and the other
# PG_* lines pgseam-dev prints: PG_pid, ...) and exports PGPASSWORD. pg_stop stops it.
pg_start() {
  local dir=$1 c args=(); shift
  for c in "$@"; do args+=(--conf "$c"); done
  eval "$("$DEV" postgres start --dir "$dir" "${args[@]}" | sed 's/^/PG_/')"
  BENCH_PG_DIR=$dir
  export PGPASSWORD=postgres
}
pg_stop() {
  [ -n "${BENCH_PG_DIR:-}" ] && "$DEV" postgres stop --dir "$BENCH_PG_DIR" >/dev/null 2>&1
  BENCH_PG_DIR=""
  return 0
}
# broker_start DIR: a fresh tansu broker (memory storage) with DIR as its state directory. Sets
# BROKER_bootstrap, BROKER_pid (and the other BROKER_* lines) and BOOTSTRAP. broker_stop stops it.
broker_start() {
  rm -rf "$1"; mkdir -p "$1"
  eval "$("$DEV" broker start --dir "$1" | sed 's/^/BROKER_/')"
  BENCH_BROKER_DIR=$1 BOOTSTRAP=$BROKER_bootstrap
}
broker_stop() {
  [ -n "${BENCH_BROKER_DIR:-}" ] && "$DEV" broker stop --dir "$BENCH_BROKER_DIR" >/dev/null 2>&1
  BENCH_BROKER_DIR="" BOOTSTRAP=""
  return 0
}
# For the scripts' EXIT traps: kills the pids in PIDS, then stops the broker and PostgreSQL.
bench_stop_servers() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  broker_stop
  pg_stop
}

# ---------------------------------------------------------------- SQL
# Q ARGS...: psql -c/-f ARGS on database $BENCH_DB of the PostgreSQL started by pg_start.
Q() { "$PSQL" -X -q -At -h 127.0.0.1 -p "$PG_port" -U postgres -v ON_ERROR_STOP=1 -d "$BENCH_DB" "$@"; }
pg_create_db() { "$PSQL" -X -q -h 127.0.0.1 -p "$PG_port" -U postgres -d postgres -c "CREATE DATABASE $1" >/dev/null; }

# ---------------------------------------------------------------- datasets
# The `bench` table's columns after its bigint key, and their values for row g.
BENCH_COLS="a int, b int, c int, txt text, ts timestamptz, amount numeric(12,2)"
BENCH_SEL="g % 1000, g % 7, (g * 31) % 100000, md5(g::text) || substr(md5((g + 1)::text), 1, 18),
           timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', (g % 100000) / 100.0"
# create_bench_table TABLE: an empty table of `bench`'s shape.
create_bench_table() { Q -c "CREATE TABLE $1 (id bigint PRIMARY KEY, $BENCH_COLS)"; }
# load_bench N [TABLE]: TABLE (default bench) with rows 1..N, in key order.
load_bench() {
  local t=${2:-bench}
  create_bench_table "$t"
  Q -c "INSERT INTO $t SELECT g, $BENCH_SEL FROM generate_series(1, $1) g"
}
# single_tx_procedure TABLE: procedure single_tx(n) inserting `bench` rows 1..n into TABLE, one
# transaction each (the streaming backlog).
single_tx_procedure() {
  Q -c "CREATE PROCEDURE single_tx(n bigint) LANGUAGE plpgsql AS \$\$
        BEGIN FOR g IN 1..n LOOP
          INSERT INTO $1 SELECT g, $BENCH_SEL;
          COMMIT;
        END LOOP; END \$\$"
}
wide_ddl() {   # N: 60 columns, id + 59 cycling through 12 types
  local types=("int" "bigint" "text" "double precision" "boolean" "timestamptz" "numeric(12,2)" "date"
               "varchar(32)" "smallint" "uuid" "timestamp")
  local exprs=("(g * 7) % 100000" "g::bigint * 1000003" "md5(g::text)" "g / 7.0" "g % 2 = 0"
               "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'" "(g % 100000) / 100.0"
               "date '2000-01-01' + (g % 9000)" "substr(md5((g + 1)::text), 1, 20)" "(g % 30000)::smallint"
               "md5(g::text)::uuid" "timestamp '2024-01-01 00:00:00' + g * interval '1 minute'")
  local cols="id bigint PRIMARY KEY" sel="g" i t
  for i in $(seq 1 59); do
    t=$(( (i - 1) % 12 ))
    cols+=", c$i ${types[$t]}"; sel+=", ${exprs[$t]}"
  done
  echo "CREATE TABLE wide ($cols); INSERT INTO wide SELECT $sel FROM generate_series(1, $1) g;"
}
load_wide() { Q -c "$(wide_ddl "$1")"; }
load_toast() {   # N: 20 kB of text per row, out of line (STORAGE EXTERNAL: no compression)
  Q -c "CREATE TABLE toast (id bigint PRIMARY KEY, a int, body text)" \
    -c "ALTER TABLE toast ALTER COLUMN body SET STORAGE EXTERNAL" \
    -c "INSERT INTO toast SELECT g, g % 1000, repeat(md5(g::text), 625) FROM generate_series(1, $1) g"
}
# load_dataset_table bench|wide|toast N
load_dataset_table() {
  case "$1" in
    bench) load_bench "$2";;
    wide) load_wide "$2";;
    toast) load_toast "$2";;
    *) echo "unknown dataset $1" >&2; exit 2;;
  esac
}
# Debezium's signaling table (signal.data.collection=public.dbz_signal) and two latency tables:
# lat0 for streaming alone, lat during a snapshot.
signal_tables() {
  Q -c "CREATE TABLE dbz_signal (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048));
        CREATE TABLE lat0 (id bigserial PRIMARY KEY, at timestamptz DEFAULT now());
        CREATE TABLE lat (id bigserial PRIMARY KEY, at timestamptz DEFAULT now());"
}

# ---------------------------------------------------------------- configs
# write_props FILE LINE...: KEY=VALUE lines in order; a later KEY=VALUE replaces an earlier
# one's value in place, `KEY=` drops the key, empty lines are skipped, lines without `=` stay.
write_props() {
  local file=$1 line k n=0; shift
  local -a order=(); local -A val=()
  for line in "$@"; do
    [ -n "$line" ] || continue
    if [[ $line != *=* ]]; then order+=("#$n"); val["#$n"]=$line; n=$((n + 1)); continue; fi
    k=${line%%=*}
    [[ -v "val[$k]" ]] || order+=("$k")
    val[$k]=${line#*=}
  done
  for k in "${order[@]}"; do
    if [[ $k == \#* ]]; then printf '%s\n' "${val[$k]}"
    elif [ -n "${val[$k]}" ]; then printf '%s=%s\n' "$k" "${val[$k]}"; fi
  done > "$file"
}
# worker_props FILE KEY=VALUE...: a Connect worker into $BOOTSTRAP (else an unreachable
# 127.0.0.1:1, for the null sink), schemaless JSON keys and values, offsets flushed every
# 100 ms, the REST API on a free port. Give offset.storage.file.filename (and pgseam.sink).
worker_props() {
  local file=$1; shift
  write_props "$file" "bootstrap.servers=${BOOTSTRAP:-127.0.0.1:1}" \
    "key.converter=org.apache.kafka.connect.json.JsonConverter" \
    "value.converter=org.apache.kafka.connect.json.JsonConverter" \
    "key.converter.schemas.enable=false" "value.converter.schemas.enable=false" \
    "offset.flush.interval.ms=100" "listeners=http://127.0.0.1:0" "$@"
}
# connector_props FILE KEY=VALUE...: a Debezium PostgresConnector on $PG_port, database bench,
# topic prefix bench, pgoutput, decimal.handling.mode=string. Give name, slot.name and
# table.include.list at least.
connector_props() {
  local file=$1; shift
  write_props "$file" "name=bench" "connector.class=io.debezium.connector.postgresql.PostgresConnector" \
    "database.hostname=127.0.0.1" "database.port=$PG_port" "database.user=postgres" \
    "database.password=postgres" "database.dbname=$BENCH_DB" "topic.prefix=bench" "plugin.name=pgoutput" \
    "decimal.handling.mode=string" "$@"
}

# ---------------------------------------------------------------- one named pgseam
# pgseam_start_named NAME: `$PGSEAM standalone $WORK/NAME.worker $WORK/NAME.connector` in the
# background, appending to $WORK/NAME.log; sets PGSEAM_PID.
pgseam_start_named() {
  "$PGSEAM" standalone "$WORK/$1.worker" "$WORK/$1.connector" >>"$WORK/$1.log" 2>&1 &
  PGSEAM_PID=$!
  PIDS+=("$PGSEAM_PID")
}
# wait_log NAME TEXT [COUNT]: until $WORK/NAME.log has COUNT (default 1) lines with TEXT; exits
# with the log's tail if pgseam exits first.
wait_log() {
  until [ "$(grep -c "$2" "$WORK/$1.log" 2>/dev/null)" -ge "${3:-1}" ] 2>/dev/null; do
    kill -0 "$PGSEAM_PID" 2>/dev/null || { tail -50 "$WORK/$1.log" >&2; exit 1; }
    sleep 0.05
  done
}
stop_pgseam() { kill -TERM "$PGSEAM_PID"; wait "$PGSEAM_PID" || true; }
# churn_writers LATENCY_TABLE: until stop_writers, one psql session of server-side rounds, each
# statement its own transaction: an insert of a new `bench` key (sequence bench_new), an update
# `ver = ver + 1` of a random key, a delete of a random key, an insert into LATENCY_TABLE, then
# 2 ms of sleep. (Keys in variables: `WHERE id = <expression with random()>` scans the table.)
churn_writers() {
  touch "$WORK/writing"
  ( rounds=0; t0=$(now)
    while [ -e "$WORK/writing" ]; do
      Q -c "DO \$\$ DECLARE k bigint; top bigint; BEGIN FOR i IN 1..100 LOOP
        INSERT INTO bench (id, a, b, c, txt, ts, amount)
          VALUES (nextval('bench_new'), 1, 2, 3, 'new', now(), 1.5); COMMIT;
        top := currval('bench_new');
        k := 1 + (random() * (top - 1))::bigint;
        UPDATE bench SET ver = ver + 1, a = a + 1 WHERE id = k; COMMIT;
        k := 1 + (random() * (top - 1))::bigint;
        DELETE FROM bench WHERE id = k; COMMIT;
        INSERT INTO $1 DEFAULT VALUES; COMMIT;
        PERFORM pg_sleep(0.002); END LOOP; END \$\$;"
      rounds=$((rounds + 100))
    done
    echo "$rounds $(echo "$(now) - $t0" | bc)" > "$WORK/writers.rate" ) &
  WRITER_PID=$!; PIDS+=("$WRITER_PID")
}
# churn_schema ROWS: what churn_writers needs on `bench` (rows 1..ROWS): a `ver` column and the
# sequence of new keys.
churn_schema() {
  Q -c "ALTER TABLE bench ADD COLUMN ver bigint NOT NULL DEFAULT 0;
        CREATE SEQUENCE bench_new START $(($1 + 1));"
}
# Stops churn_writers; sets WRITE_RATE (rounds/s) and logs it.
stop_writers() {
  rm -f "$WORK/writing"; wait "$WRITER_PID" || true
  local n s; read -r n s < "$WORK/writers.rate"
  WRITE_RATE=$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.0f", n / s }')
  log "writers: $n rounds in $s s ($WRITE_RATE rounds/s, 4 transactions each)"
}
# latency_reader TOPIC OUT TIMEOUT_S: pgseam-bench latency-live reads TOPIC as records arrive,
# until 5 s without one, into OUT; returns once it is ready. Sets LAT_PID.
latency_reader() {
  "$BENCH" latency-live --bootstrap "$BOOTSTRAP" --topic "$1" --expect 1000000000 \
    --idle-stop-s 5 --timeout-s "$3" > "$2" &
  LAT_PID=$!; PIDS+=("$LAT_PID")
  until grep -q ready "$2" 2>/dev/null; do sleep 0.05; done
}
