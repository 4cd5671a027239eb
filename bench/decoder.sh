#!/usr/bin/env bash
# bench/decoder.sh: the pgoutput decoder's throughput in messages/s, on messages captured from a
# real PostgreSQL 15: N single-row INSERT transactions into the `bench` dataset's table (the
# same rows as bench/run.sh's backlog), read back with pg_logical_slot_peek_binary_changes
# (proto_version 1: Begin, Relation once, Insert, Commit per transaction) and decoded again and
# again by pgoutput/examples/decode_throughput.rs (frame + message, as the source does). Run by
# hand; results in BENCHMARKS.md ("Decoder").
#
#   bench/decoder.sh [N] [SECONDS]     (default N 100000, SECONDS 5)
#
# Needs the release pgseam-dev (cargo build --release -p pgseam-testkit) and PostgreSQL 15.
set -euo pipefail
N=${1:-100000}; SECONDS_RUN=${2:-5}
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
DEV=$TARGET/release/pgseam-dev
[ -x "$DEV" ] || { echo "missing $DEV: cargo build --release -p pgseam-testkit" >&2; exit 1; }
WORK=$(mktemp -d /tmp/pgseam-decoder.XXXXXX); chmod 755 "$WORK"
cleanup() { "$DEV" postgres stop --dir "$WORK/pg" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
eval "$("$DEV" postgres start --dir "$WORK/pg" | sed 's/^/PG_/')"
export PGPASSWORD=postgres
Q() { psql -X -q -At -h 127.0.0.1 -p "$PG_port" -U postgres -v ON_ERROR_STOP=1 -d postgres "$@"; }
Q -c "CREATE TABLE bench_ins (id bigint PRIMARY KEY, a int, b int, c int, txt text, ts timestamptz, amount numeric(12,2))" \
  -c "CREATE PUBLICATION dec_pub FOR TABLE bench_ins" \
  -c "SELECT pg_create_logical_replication_slot('dec', 'pgoutput')" >/dev/null
Q -c "CREATE PROCEDURE single_tx(n bigint) LANGUAGE plpgsql AS \$\$
      BEGIN FOR g IN 1..n LOOP
        INSERT INTO bench_ins VALUES (g, g % 1000, g % 7, (g * 31) % 100000,
          md5(g::text) || substr(md5((g + 1)::text), 1, 18),
          timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', (g % 100000) / 100.0);
        COMMIT;
      END LOOP; END \$\$" \
  -c "SET synchronous_commit = off" -c "CALL single_tx($N)" -c "CHECKPOINT"
Q -c "COPY (SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('dec', NULL, NULL,
        'proto_version', '1', 'publication_names', 'dec_pub')) TO STDOUT" > "$WORK/messages.hex"
echo "captured $(wc -l < "$WORK/messages.hex") messages of $N transactions; load $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
cargo run --release -q -p pgoutput --example decode_throughput -- "$WORK/messages.hex" "$SECONDS_RUN"
