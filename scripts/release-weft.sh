# Sourced by the benchmarks: sets `weft` to the binary given as $1, else to a release build
# made here (in $CARGO_TARGET_DIR, else target/).
if [ -n "${1:-}" ]; then
  weft=$(realpath "$1")
else
  cargo build --release --quiet
  weft=$(realpath "${CARGO_TARGET_DIR:-target}/release/weft")
fi
