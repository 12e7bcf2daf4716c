# Sourced by the benchmarks: sets `weft` to the binary given as $1, else to a release build
# made here (in the target folder cargo uses, which .cargo/config.toml may set), and defines
# `step` for timing weft's steps.
if [ -n "${1:-}" ]; then
  weft=$(realpath "$1")
else
  cargo build --release --quiet
  target=$(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  weft=$(realpath "$target/release/weft")
fi

# step NAME ARGS...: runs `weft ARGS` and prints NAME with its wall time and weft's peak RSS;
# its output goes to $work/NAME.log and .err, whose tails are shown when it fails.
step() {
  local name=$1
  shift
  /usr/bin/time -f "$name: %e s wall, weft peak RSS %M KiB" "$weft" "$@" >"$work/$name.log" 2>"$work/$name.err" ||
    { tail -n 20 "$work/$name.log" "$work/$name.err"; exit 1; }
  tail -1 "$work/$name.err"
}
