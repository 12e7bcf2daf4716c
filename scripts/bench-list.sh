#!/usr/bin/env bash
# Benchmark: how long `weft list` takes in a fresh `weft init` skeleton (target: under 50 ms).
# Usage: scripts/bench-list.sh [path/to/weft]   (default: a release build made here)
# Prints mean wall time and peak RSS. Uses hyperfine when installed, else a timed loop.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/release-weft.sh "${1:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_CONFIG_HOME="$work/xdg"
"$weft" init "$work/demo" >/dev/null
cd "$work/demo"
runs=200
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 10 --runs "$runs" --style basic "$weft list"
else
  start=$(date +%s%N)
  for _ in $(seq "$runs"); do "$weft" list >/dev/null; done
  end=$(date +%s%N)
  echo "weft list: mean $(( (end - start) / runs / 1000 )) µs over $runs runs"
fi
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f "weft list: peak RSS %M KiB" "$weft" list >/dev/null
else
  echo "weft list: peak RSS not measured (install GNU time: apt-get install time)"
fi
