#!/usr/bin/env bash
# Benchmark: weft's start-up (issue 38). In a `weft init` project with two plugins and an app
# it measures `weft list` and `weft run system_info` (on this machine, `local`), with
# `weft --version` as the floor, and prints each one's ratio to the floor.
# Usage: scripts/bench-startup.sh [path/to/weft]   (default: a release build made here)
# Wall time with hyperfine when installed (else a timed loop): mean ± standard deviation and
# minimum, first with weft's index of the project's scripts and templates kept (warm), then with
# it emptied before every run (cold). RUNS sets the runs of each command (default 200).
# With MEASURE=instructions, instructions counted by valgrind's callgrind instead (weft's
# process only, not the commands it starts), which a shared or virtual machine does not blur.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/release-weft.sh "${1:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_CONFIG_HOME="$work/xdg" XDG_CACHE_HOME="$work/cache"
# A copy is measured: a binary as the linker wrote it starts 0.3 ms slower here than a copy of
# it (more page faults), which would blur the comparison of two builds.
cp "$weft" "$work/weft"
weft="$work/weft"
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
index="$XDG_CACHE_HOME/weft/index"
# Fills the index: `run` also learns which templates parse.
"$weft" run system_info >/dev/null

commands=("--version" "list" "run system_info")
echo "$("$weft" --version), $(nproc) cores, $(date -u +%F)"
if [ "${MEASURE:-time}" = instructions ]; then
  declare -A count
  for state in warm cold; do
    for command in "${commands[@]}"; do
      if [ "$state" = cold ]; then rm -rf "$index"; fi
      # shellcheck disable=SC2086 # the command's words are meant to split
      valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$weft" $command \
        >/dev/null 2>"$work/valgrind.err"
      count[$command]=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/valgrind.err")
    done
    echo "$state index:"
    for command in "${commands[@]}"; do
      awk -v c="weft $command" -v n="${count[$command]}" -v f="${count[--version]}" \
        'BEGIN { printf "  %-22s %8.1f M instructions  %5.1f× --version\n", c, n / 1e6, n / f }'
    done
  done
  exit 0
fi

runs=${RUNS:-200}
# measure STATE COMMAND: prints COMMAND's mean, standard deviation and minimum in ms.
measure() {
  local state=$1 command=$2
  if command -v hyperfine >/dev/null; then
    local prepare=()
    if [ "$state" = cold ]; then prepare=(--prepare "rm -rf $index"); fi
    # -N: no shell between hyperfine and weft, whose start-up would blur a few ms.
    hyperfine -N --warmup 10 --runs "$runs" --style none --export-json "$work/t.json" \
      "${prepare[@]}" "$weft $command" >/dev/null 2>"$work/hyperfine.err" ||
      { cat "$work/hyperfine.err" >&2; exit 1; }
    python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(r["mean"] * 1e3, r["stddev"] * 1e3, r["min"] * 1e3)' "$work/t.json"
  else
    local times=()
    for _ in $(seq "$runs"); do
      if [ "$state" = cold ]; then rm -rf "$index"; fi
      local start
      start=$(date +%s%N)
      # shellcheck disable=SC2086 # the command's words are meant to split
      "$weft" $command >/dev/null
      times+=($(($(date +%s%N) - start)))
    done
    printf '%s\n' "${times[@]}" | awk '{ s += $1; q += $1 * $1; if (NR == 1 || $1 < m) m = $1 }
      END { mean = s / NR; sd = sqrt(q / NR - mean * mean); print mean / 1e6, sd / 1e6, m / 1e6 }'
  fi
}

for state in warm cold; do
  echo "$state index ($runs runs each):"
  floor=
  for command in "${commands[@]}"; do
    read -r mean sd min < <(measure "$state" "$command")
    floor=${floor:-$mean}
    awk -v c="weft $command" -v mean="$mean" -v sd="$sd" -v min="$min" -v f="$floor" \
      'BEGIN { printf "  %-22s %6.2f ± %5.2f ms  min %6.2f ms  %5.1f× --version\n", c, mean, sd, min, mean / f }'
  done
done
