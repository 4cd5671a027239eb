#!/usr/bin/env bash
# Converter encode rate for the issue-10 benchmark row, events/s on one core.
#   bench/encode.sh [events]      (default 1000000)
# Avro is not measured yet: the Avro converter does not exist yet (COMPATIBILITY.md §3).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p pgseam-converters --example encode_bench -- "${1:-1000000}"
