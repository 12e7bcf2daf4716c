#!/usr/bin/env bash
# Benchmark: weft's start-up (issue 38). In a `weft init` project with two plugins and an app
# it measures `weft list` and `weft run system_info` (on this machine, `local`), with
# `weft --version` as the floor, and prints each one's ratio to the floor.
# Usage: scripts/bench-startup.sh [path/to/weft]   (default: a release build made here)
# Wall time with hyperfine when installed (else a timed loop); with MEASURE=instructions,
# instructions counted by valgrind's callgrind instead (weft's process only, not the commands
# it starts), which a shared or virtual machine does not blur.
# The first `weft list` fills weft's index in a fresh cache folder; the figures are of the
# commands after it (`COLD=1` empties the index before every run).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/release-weft.sh "${1:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_CONFIG_HOME="$work/xdg" XDG_CACHE_HOME="$work/cache"
"$weft" init "$work/demo" >/dev/null
for plugin in alpha beta; do
  "$weft" init --skeleton plugin "$work/$plugin" >/dev/null
done
cd "$work/demo"
"$weft" plugin add ../alpha >/dev/null
"$weft" plugin add ../beta >/dev/null
printf '\n[apps.site]\nrepos = [{ name = "site", path = "site", install = false }]\n' >>weft.toml
mkdir -p site
echo v1 >site/index.html
"$weft" list >/dev/null
cold() { if [ -n "${COLD:-}" ]; then rm -rf "$XDG_CACHE_HOME/weft/index"; fi; }

commands=("--version" "list" "run system_info")
declare -A figure
if [ "${MEASURE:-time}" = instructions ]; then
  unit=instructions
  for command in "${commands[@]}"; do
    cold
    # shellcheck disable=SC2086 # the command's words are meant to split
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$weft" $command \
      >/dev/null 2>"$work/valgrind.err"
    figure[$command]=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/valgrind.err")
  done
else
  unit=µs
  runs=${RUNS:-200}
  for command in "${commands[@]}"; do
    if command -v hyperfine >/dev/null; then
      # shellcheck disable=SC2016 # $XDG_CACHE_HOME is the benchmarked shell's
      prepare=${COLD:+rm -rf "$XDG_CACHE_HOME/weft/index"}
      hyperfine --warmup 10 --runs "$runs" --style none --export-json "$work/t.json" \
        ${prepare:+--prepare "$prepare"} "$weft $command" >/dev/null
      figure[$command]=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["results"][0]["mean"]*1e6))' "$work/t.json")
    else
      total=0
      for _ in $(seq "$runs"); do
        cold
        start=$(date +%s%N)
        # shellcheck disable=SC2086
        "$weft" $command >/dev/null
        total=$((total + $(date +%s%N) - start))
      done
      figure[$command]=$((total / runs / 1000))
    fi
  done
fi
floor=${figure[--version]}
for command in "${commands[@]}"; do
  ratio=$(awk -v a="${figure[$command]}" -v b="$floor" 'BEGIN { printf "%.1f", a / b }')
  printf 'weft %-16s %12s %s  %5s× --version\n' "$command" "${figure[$command]}" "$unit" "$ratio"
done
