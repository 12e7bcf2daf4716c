#!/usr/bin/env bash
# Builds the VS Code extension (editors/vscode) into a .vsix, from a clean copy: the npm
# packages at the versions package-lock.json pins (`npm ci`), weft.toml's schema from
# `weft config schema`, the extension's tests (`npm test`), then `vsce package`.
# Usage: scripts/build-vscode.sh [path/to/weft] [OUT.vsix]
#   (default: a debug build made here; editors/vscode/weft.vsix)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if [ -n "${1:-}" ]; then
  weft=$(realpath "$1")
else
  cargo build --quiet
  weft=$(realpath "${CARGO_TARGET_DIR:-target}/debug/weft")
fi
out=$(realpath -m "${2:-editors/vscode/weft.vsix}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy of the committed files only: nothing left over from an earlier build gets packaged.
git ls-files -z editors/vscode | xargs -0 -I{} cp --parents {} "$work"
# The grammar test reads the stdlib scripts next to the extension, as in the repository.
cp -r stdlib "$work/stdlib"
cd "$work/editors/vscode"
"$weft" config schema > weft.schema.json
npm ci --no-audit --no-fund --loglevel=error
npm test
npx vsce package --out "$out"
echo "built $out"
