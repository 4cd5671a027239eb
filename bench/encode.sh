#!/usr/bin/env bash
# Converter encode rate for the issue-10 benchmark row, events/s on one core.
#   bench/encode.sh [events]      (default 1000000)
# JSON schemaless, JSON with schemas and Avro (key and value, in-memory registry).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p pgseam-converters --example encode_bench -- "${1:-1000000}"
