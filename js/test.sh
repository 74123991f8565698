#!/usr/bin/env bash
# Builds the npm package (js/build.sh) and the native CLI (dev profile, as
# scripts/js-interop/run.sh builds it), then runs the Node tests (js/test.mjs):
# the package's output against the CLI's on the whole corpus, the package's
# modules under asyncify-wasm, and its errors. Part of .ci/run.
#
# Usage: js/test.sh [FILTER]     (FILTER: only cases whose name contains it)
# Environment: ASYNCIFY_BIN=PATH compares with this CLI instead of building one.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
command -v node >/dev/null || { echo "test.sh: node (20 or newer) is required" >&2; exit 1; }

"$here/build.sh"

# wabt and asyncify-wasm, pinned by scripts/js-interop/package-lock.json.
interop="$repo/scripts/js-interop"
if [ ! -x "$interop/node_modules/.bin/wat2wasm" ] || [ ! -d "$interop/node_modules/asyncify-wasm" ]; then
  (cd "$interop" && npm ci --no-audit --no-fund)
fi

if [ -n "${ASYNCIFY_BIN:-}" ]; then
  bin="$ASYNCIFY_BIN"
else
  (cd "$repo" && cargo build -p asyncify-cli)
  target_dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
  bin="$target_dir/debug/asyncify"
fi

node "$here/test.mjs" "$bin" "$@"
