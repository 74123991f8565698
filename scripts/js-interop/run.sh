#!/usr/bin/env bash
# Proves that modules instrumented by `asyncify instrument` run under the
# asyncify-wasm JS runtime (npm) with Promise-returning imports, by comparing
# each module in modules/*.wat against its uninstrumented self (check.mjs).
#
# Usage: scripts/js-interop/run.sh [NAME...]
# Environment:
#   ASYNCIFY_INTEROP_TOOL=asyncify (default) | binaryen
#       binaryen instruments with `wasm-opt --asyncify` instead of our CLI, to
#       validate the modules and the checker against the reference pass.
#   ASYNCIFY_BIN=PATH       use this `asyncify` binary instead of building one.
#   ASYNCIFY_INTEROP_OUT=DIR  where the .wasm files go
#       (default: <repo>/target/js-interop/<tool>, never committed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tool="${ASYNCIFY_INTEROP_TOOL:-asyncify}"
out="${ASYNCIFY_INTEROP_OUT:-$repo/target/js-interop/$tool}"

die() { echo "run.sh: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is required (Node 20 or newer)"
command -v npm >/dev/null || die "npm is required"

# npm ci gives the exact versions of package-lock.json. npm leaves its own
# node_modules/.package-lock.json behind: if that is newer than the lock,
# node_modules is already installed from it and npm ci can be skipped.
cd "$here"
if [ -f package-lock.json ]; then
  if [ ! node_modules/.package-lock.json -nt package-lock.json ] ||
     [ ! node_modules/.package-lock.json -nt package.json ]; then
    npm ci --no-audit --no-fund
  fi
else
  npm install --no-audit --no-fund
fi
wat2wasm="$here/node_modules/.bin/wat2wasm"
[ -x "$wat2wasm" ] || die "wat2wasm missing from node_modules (npm package wabt)"

case "$tool" in
  asyncify)
    if [ -n "${ASYNCIFY_BIN:-}" ]; then
      bin="$ASYNCIFY_BIN"
    else
      # The dev profile, as CI builds it, so its artefacts are reused.
      (cd "$repo" && cargo build -p asyncify-cli) || die "cargo build -p asyncify-cli failed"
      target_dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
      bin="$target_dir/debug/asyncify"
    fi
    [ -x "$bin" ] || die "no asyncify binary at $bin"
    ;;
  binaryen)
    # Prefer the pinned npm build; fall back to a system wasm-opt.
    if [ -x "$here/node_modules/.bin/wasm-opt" ]; then
      wasm_opt="$here/node_modules/.bin/wasm-opt"
    elif command -v wasm-opt >/dev/null; then
      wasm_opt="$(command -v wasm-opt)"
    else
      die "wasm-opt not found (npm package binaryen, or apt-get install binaryen)"
    fi
    ;;
  *) die "ASYNCIFY_INTEROP_TOOL must be asyncify or binaryen, not '$tool'" ;;
esac

mkdir -p "$out"
if [ "$#" -gt 0 ]; then
  names=("$@")
else
  names=()
  for f in "$here"/modules/*.wat; do names+=("$(basename "$f" .wat)"); done
fi

for name in "${names[@]}"; do
  wat="$here/modules/$name.wat"
  [ -f "$wat" ] || die "no module $wat"
  # Stale outputs must not pass for fresh ones.
  rm -f "$out/$name.wasm" "$out/$name.async.wasm"
  # --debug-names keeps the function names, for Binaryen's function lists.
  "$wat2wasm" --enable-all --debug-names "$wat" -o "$out/$name.wasm" || die "wat2wasm failed on $wat"
  # Each module names the imports that may suspend in a comment line:
  #   ;; asyncify-imports: env.a,env.b
  imports="$(sed -n 's/^;; asyncify-imports: *//p' "$wat" | head -n 1)"
  [ -n "$imports" ] || die "$wat has no ';; asyncify-imports:' line"
  # An instrumentation failure is reported by check.mjs as a failed module
  # (missing .async.wasm), so the other modules still get checked.
  case "$tool" in
    asyncify)
      "$bin" instrument "$wat" -o "$out/$name.async.wasm" --imports "$imports" ||
        echo "run.sh: asyncify instrument failed on $name" >&2
      ;;
    binaryen)
      "$wasm_opt" "$out/$name.wasm" --enable-exception-handling --asyncify "--pass-arg=asyncify-imports@$imports" \
        -o "$out/$name.async.wasm" ||
        echo "run.sh: wasm-opt --asyncify failed on $name" >&2
      ;;
  esac
done

echo "run.sh: instrumented with $tool into $out"
node "$here/check.mjs" "$out" "${names[@]}"
