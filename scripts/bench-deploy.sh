#!/usr/bin/env bash
# Benchmark: examples/hello-wsgi end to end on `local` machines (as root): bring up 2 app
# machines and 1 lb and deploy (cold), deploy a new version (warm), roll back, take it down.
# Usage: scripts/bench-deploy.sh [path/to/weft]   (default: a release build made here)
# Prints wall time and weft's peak RSS for each step, `cloud create web -n 3` with the image
# cached, and an idle machine's memory (the summed RSS and PSS of every process in it). With
# BENCH_IMAGE_BUILD=1 it first builds the machine image into an empty cache and times that (a
# few minutes). The build fetches Flask and gunicorn from PyPI through pip's cache.
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
if [ "${BENCH_IMAGE_BUILD:-0}" = 1 ]; then
  export WEFT_IMAGE_CACHE="$work/images"
  step "first image build (debootstrap, 1 machine)" cloud create web -n 1 --no-provision
  "$weft" cloud destroy -e dev --yes >/dev/null
fi
step "cloud create web -n 3 (image cached)" cloud create web -n 3 --no-provision
sleep 5
# An idle machine's memory: the RSS of every process in web-0's PID namespace.
meta="$HOME/.local/share/weft/machines/root.dev.web-0/meta.json"
nspawn=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$meta")
init=$(cat /proc/"$(cat /proc/"$nspawn"/task/*/children | head -n1 | awk '{print $1}')"/task/*/children | awk '{print $1}' | head -n1)
ns=$(readlink /proc/"$init"/ns/pid)
# RSS counts each shared page (libc, libsystemd, the image's files every machine maps) in
# every process; PSS divides it among the processes that share it, so summed PSS is what the
# machine adds to the host.
kib=0
pss=0
for p in /proc/[0-9]*; do
  [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
  rss=$(awk '/^VmRSS:/ {print $2}' "$p/status" 2>/dev/null || true)
  kib=$((kib + ${rss:-0}))
  share=$(awk '/^Pss:/ {print $2}' "$p/smaps_rollup" 2>/dev/null || true)
  pss=$((pss + ${share:-0}))
done
echo "idle machine memory (web-0, all its processes): $((kib / 1024)) MiB RSS, $((pss / 1024)) MiB PSS"
"$weft" cloud destroy -e dev --yes >/dev/null
step "env_up (3 machines, build, deploy)" run env_up
sed -i 's/^version = "1.0"/version = "2.0"/' app/pyproject.toml
step "hello_deploy (rebuild, 2 machines)" run hello_deploy
step "hello_rollback" run hello_rollback
step "env_down" run env_down --yes
