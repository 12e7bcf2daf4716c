#!/usr/bin/env bash
# Benchmark: examples/hello-wsgi end to end on `local` machines (as root): bring up 2 app
# machines and 1 lb and deploy (cold), deploy a new version (warm), roll back, take it down.
# Usage: scripts/bench-deploy.sh [path/to/weft]   (default: a release build made here)
# Prints wall time and weft's peak RSS for each step. The build fetches Flask and gunicorn
# from PyPI through pip's cache.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/release-weft.sh "${1:-}"
work=$(mktemp -d)
# The machines live under a throwaway HOME; pip keeps using the real cache.
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$HOME/.cache/pip}
export HOME="$work/home" XDG_CONFIG_HOME="$work/xdg"
mkdir -p "$HOME"
cp -r examples/hello-wsgi "$work/app"
cd "$work/app"
trap '"$weft" cloud destroy -e dev --yes >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
step() {
  local name=$1
  shift
  /usr/bin/time -f "$name: %e s wall, weft peak RSS %M KiB" "$weft" "$@" >"$work/$name.log" 2>"$work/$name.err" ||
    { tail -n 20 "$work/$name.log" "$work/$name.err"; exit 1; }
  tail -1 "$work/$name.err"
}
step "env_up (3 machines, build, deploy)" run env_up
sed -i 's/^version = "1.0"/version = "2.0"/' app/pyproject.toml
step "hello_deploy (rebuild, 2 machines)" run hello_deploy
step "hello_rollback" run hello_rollback
step "env_down" run env_down
