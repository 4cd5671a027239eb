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
. "$(dirname "$0")/lib.sh"
BENCH_DB=postgres
bench_require "$DEV"
WORK=$(mktemp -d /tmp/pgseam-decoder.XXXXXX); chmod 755 "$WORK"
cleanup() { pg_stop; rm -rf "$WORK"; }
trap cleanup EXIT
pg_start "$WORK/pg"
create_bench_table bench_ins
Q -c "CREATE PUBLICATION dec_pub FOR TABLE bench_ins" \
  -c "SELECT pg_create_logical_replication_slot('dec', 'pgoutput')" >/dev/null
single_tx_procedure bench_ins
Q -c "SET synchronous_commit = off" -c "CALL single_tx($N)" -c "CHECKPOINT"
Q -c "COPY (SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('dec', NULL, NULL,
        'proto_version', '1', 'publication_names', 'dec_pub')) TO STDOUT" > "$WORK/messages.hex"
echo "captured $(wc -l < "$WORK/messages.hex") messages of $N transactions; load $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
cargo run --release -q -p pgoutput --example decode_throughput -- "$WORK/messages.hex" "$SECONDS_RUN"
