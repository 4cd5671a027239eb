#!/usr/bin/env bash
# Checks compose.yaml and docker/Dockerfile as far as a machine without a Docker engine can:
#
#   1. compose.yaml parses; every service has a pinned image (or a build), a healthcheck (or an
#      explicit `disable` for one-shot jobs), depends_on with conditions, and only named volumes
#      that are declared; every bind-mounted path and the build's Dockerfile exist.
#   2. The pgseam configs in compose/pgseam pass `pgseam validate`.
#   3. The Dockerfile's build step works here: the same cargo command, then `ldd` of the binary
#      maps every shared library to a Debian package that the runtime stage installs, and every
#      package of both stages' apt-get lines exists (`apt-cache policy`).
#   4. compose/starrocks/init.sql is what `pgseam starrocks` prints for the sample schema
#      (cargo test --test it starrocks_compose::, against a throwaway PostgreSQL).
#
#   scripts/check-compose.sh [--skip-release-build]
#
# Env: CARGO_TARGET_DIR as for cargo. Needs python3 with PyYAML (Debian: python3-yaml); when it
# is missing, a virtualenv is created in .venv-compose (gitignored) and PyYAML installed there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
SKIP_RELEASE=0
[[ ${1:-} == --skip-release-build ]] && SKIP_RELEASE=1

log() { printf 'check-compose: %s\n' "$*" >&2; }
fail() { printf 'check-compose: FAIL: %s\n' "$*" >&2; exit 1; }

PYTHON=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
  if [[ ! -x $REPO/.venv-compose/bin/python ]]; then
    log "PyYAML missing: creating .venv-compose"
    python3 -m venv "$REPO/.venv-compose"
    "$REPO/.venv-compose/bin/pip" install --quiet pyyaml
  fi
  PYTHON=$REPO/.venv-compose/bin/python
fi

log "1. compose.yaml"
"$PYTHON" - "$REPO" <<'PY'
import os, re, sys, yaml

repo = sys.argv[1]
with open(os.path.join(repo, "compose.yaml")) as f:
    doc = yaml.safe_load(f)
errors = []
services = doc.get("services") or {}
declared = set((doc.get("volumes") or {}).keys())
if not services:
    errors.append("no services")
for name, svc in services.items():
    image = svc.get("image")
    if "build" in svc:
        build = svc["build"]
        context = os.path.join(repo, build.get("context", "."))
        dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            errors.append(f"{name}: build dockerfile {dockerfile} missing")
    elif not image or ":" not in image or image.endswith(":latest"):
        errors.append(f"{name}: image {image!r} is not pinned to a version tag")
    hc = svc.get("healthcheck")
    if not hc or not (hc.get("test") or hc.get("disable")):
        errors.append(f"{name}: no healthcheck")
    for dep, spec in (svc.get("depends_on") or {}).items():
        if dep not in services:
            errors.append(f"{name}: depends_on unknown service {dep}")
        if not isinstance(spec, dict) or spec.get("condition") not in (
            "service_started", "service_healthy", "service_completed_successfully"):
            errors.append(f"{name}: depends_on {dep} without a condition")
        elif spec["condition"] == "service_healthy" and (services.get(dep, {}).get("healthcheck") or {}).get("disable"):
            errors.append(f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck")
    for vol in svc.get("volumes") or []:
        source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source")
        if source.startswith((".", "/")):
            path = os.path.normpath(os.path.join(repo, source))
            if not os.path.exists(path):
                errors.append(f"{name}: bind mount {source} does not exist")
        elif source not in declared:
            errors.append(f"{name}: volume {source} is not declared under volumes:")
    entry = svc.get("entrypoint") or []
    for word in entry if isinstance(entry, list) else entry.split():
        if word.startswith("/init/"):
            local = os.path.join(repo, "compose/starrocks", word[len("/init/"):])
            if not os.path.isfile(local):
                errors.append(f"{name}: entrypoint file {local} missing")
for e in errors:
    print("  " + e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"  {len(services)} services, {len(declared)} named volumes: OK", file=sys.stderr)
PY

log "2. pgseam validate --offline compose/pgseam/*.properties"
cargo build --quiet -p pgseam --bin pgseam
"$TARGET/debug/pgseam" validate --offline compose/pgseam/worker.properties compose/pgseam/connector.properties

log "3. Dockerfile build steps"
dockerfile_packages() { # $1 = stage number (1 builder, 2 runtime): its apt-get install list
  "$PYTHON" - "$1" <<'PY'
import re, sys
stage = int(sys.argv[1])
text = open("docker/Dockerfile").read().replace("\\\n", " ")
stages = re.split(r"^FROM ", text, flags=re.M)[1:]
for match in re.finditer(r"apt-get install ([^&]*)", stages[stage - 1]):
    for word in match.group(1).split():
        if not word.startswith("-"):
            print(word)
PY
}
BUILD_PACKAGES=$(dockerfile_packages 1)
RUNTIME_PACKAGES=$(dockerfile_packages 2)
[[ -n $BUILD_PACKAGES && -n $RUNTIME_PACKAGES ]] || fail "cannot read the apt-get lines of docker/Dockerfile"
for pkg in $BUILD_PACKAGES $RUNTIME_PACKAGES; do
  candidate=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }')
  [[ -n $candidate && $candidate != "(none)" ]] || fail "Debian package $pkg has no candidate (apt-cache policy)"
  log "  $pkg $candidate"
done
grep -q '^RUN cargo build --release --locked -p pgseam' docker/Dockerfile \
  || fail "docker/Dockerfile no longer runs 'cargo build --release --locked -p pgseam'"
# The Debian package that ships a library path, trying the /lib <-> /usr/lib aliases of the
# merged-/usr layout and the symlink's target (dpkg records the path the package installed).
owner_package() {
  local path=$1 candidate
  for candidate in "$path" "$(readlink -f "$path")" "${path#/usr}" "/usr${path#/usr}"; do
    dpkg -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1 && return 0
  done
  return 0
}
if ((SKIP_RELEASE)); then
  log "  release build skipped (--skip-release-build)"
else
  cargo build --release --locked -p pgseam
  binary=$TARGET/release/pgseam
  "$binary" --version
  missing=0
  while read -r lib; do
    pkg=$(owner_package "$lib")
    case $pkg in
      libc6|libgcc-s1) continue ;; # in every Debian image
    esac
    if [[ -z $pkg ]]; then
      log "  $lib: no Debian package owns it"; missing=1
    elif ! grep -qx "$pkg" <<<"$RUNTIME_PACKAGES"; then
      log "  $lib comes from $pkg, which the runtime stage does not install"; missing=1
    else
      log "  $lib ($pkg)"
    fi
  done < <(ldd "$binary" | awk '/=> \// { print $3 }')
  ((missing == 0)) || fail "runtime stage lacks shared libraries of the binary"
fi

log "4. compose/starrocks/init.sql is current"
cargo test --quiet -p pgseam --test it starrocks_compose::

log "all checks passed"
