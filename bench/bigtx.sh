#!/usr/bin/env bash
# bench/bigtx.sh: one ~1 GB PostgreSQL transaction through pgseam into the broker, with the
# producer's memory budget at 32 MiB; prints rows, WAL size, time, and pgseam's peak RSS
# (VmHWM). Run by hand (results in BENCHMARKS.md, "One 1 GB transaction"); CI runs the same
# test at 1M rows (worker/tests/it/large_transaction.rs).
#
#   bench/bigtx.sh [ROWS] [--release]
#
#   ROWS       rows of ~150 bytes in the one transaction (default 4000000: ~1.05 GB of WAL)
#   --release  build and run the release profile (default: the test profile; the memory bound
#              is the point here, not the speed)
#
# Needs PGSEAM_BROKER_BIN (or the testkit's broker lookup) and PostgreSQL 15. Peak disk use:
# about 3x the transaction (WAL, the table, the walsender's spill files) in a temp directory,
# removed at the end; the in-memory broker holds every record (~1.5 GB at 4M rows).
set -euo pipefail
ROWS=4000000
PROFILE=()
for arg in "$@"; do
  case "$arg" in
    --release) PROFILE=(--release);;
    -h|--help) sed -n '2,16p' "$0"; exit 0;;
    *) ROWS=$arg;;
  esac
done
cd "$(dirname "$0")/.."
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
PGSEAM_BIGTX_ROWS=$ROWS cargo test "${PROFILE[@]}" -p pgseam --test it large_transaction:: -- --nocapture 2>&1 |
  grep -E '^bigtx:|^test |test result|panicked|exceeds'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
