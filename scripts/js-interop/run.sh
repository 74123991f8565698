#!/usr/bin/env bash
# Proves that modules instrumented by `asyncify instrument` run under the
# asyncify-wasm JS runtime (npm) with Promise-returning imports, by comparing
# each module in modules/*.wat against its uninstrumented self (check.mjs),
# and each C++ program in corpus/cpp/*.wasm (emscripten, -fwasm-exceptions)
# instrumented with the default options against its uninstrumented self
# (cpp.mjs).
#
# Usage: scripts/js-interop/run.sh [NAME...]
#   NAME: a modules/NAME.wat or a corpus/cpp/NAME.wasm (e.g. dtor_suspend-O2);
#   default: all of both.
# Environment:
#   ASYNCIFY_INTEROP_TOOL=asyncify (default) | binaryen
#       binaryen instruments with `wasm-opt --asyncify` instead of our CLI, to
#       validate the modules and the checker against the reference pass.
#   ASYNCIFY_BIN=PATH       use this `asyncify` binary instead of building one.
#   ASYNCIFY_INTEROP_OUT=DIR  where the .wasm files go
#       (default: <repo>/target/js-interop/<tool>, never committed).
#   ASYNCIFY_CPP_FLAGS="..."  extra `asyncify instrument` options for the C++
#       programs (default: none, i.e. every import may suspend).
#   ASYNCIFY_CPP_IMPORTS=LIST  instrument the C++ programs with --imports LIST
#       and answer only those imports with Promises (default: all imports).
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

cpp_dir="$repo/corpus/cpp"
mkdir -p "$out" "$out/cpp"
names=()
cpp_names=()
if [ "$#" -gt 0 ]; then
  for name in "$@"; do
    if [ -f "$here/modules/$name.wat" ]; then names+=("$name")
    elif [ -f "$cpp_dir/$name.wasm" ]; then cpp_names+=("$name")
    else die "no module $here/modules/$name.wat or $cpp_dir/$name.wasm"
    fi
  done
else
  for f in "$here"/modules/*.wat; do names+=("$(basename "$f" .wat)"); done
  for f in "$cpp_dir"/*.wasm; do [ -f "$f" ] && cpp_names+=("$(basename "$f" .wasm)"); done
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

# The C++ programs are instrumented with the default options (every import
# may suspend). The CLI's stderr goes to NAME.instrument.log, which cpp.mjs
# quotes when NAME.async.wasm is missing.
for name in "${cpp_names[@]}"; do
  rm -f "$out/cpp/$name.async.wasm" "$out/cpp/$name.instrument.log"
  case "$tool" in
    asyncify)
      # shellcheck disable=SC2086 # ASYNCIFY_CPP_FLAGS is a list of options
      if ! "$bin" instrument "$cpp_dir/$name.wasm" -o "$out/cpp/$name.async.wasm" \
          ${ASYNCIFY_CPP_IMPORTS:+--imports "$ASYNCIFY_CPP_IMPORTS"} \
          ${ASYNCIFY_CPP_FLAGS:-} 2>"$out/cpp/$name.instrument.log"; then
        echo "run.sh: asyncify instrument failed on corpus/cpp/$name.wasm:" >&2
        head -n 3 "$out/cpp/$name.instrument.log" >&2
      fi
      ;;
    binaryen)
      "$wasm_opt" "$cpp_dir/$name.wasm" --enable-exception-handling --asyncify \
        ${ASYNCIFY_CPP_IMPORTS:+"--pass-arg=asyncify-imports@$ASYNCIFY_CPP_IMPORTS"} \
        -o "$out/cpp/$name.async.wasm" 2>"$out/cpp/$name.instrument.log" ||
        echo "run.sh: wasm-opt --asyncify failed on corpus/cpp/$name.wasm" >&2
      ;;
  esac
done

echo "run.sh: instrumented with $tool into $out"
status=0
if [ "${#names[@]}" -gt 0 ]; then
  node "$here/check.mjs" "$out" "${names[@]}" || status=1
fi
if [ "${#cpp_names[@]}" -gt 0 ]; then
  if [ "$tool" = binaryen ]; then
    # Binaryen's asyncify cannot unwind from inside a catch handler (it traps
    # or leaves the state wrong there), which is what these programs do; the
    # results are shown but do not fail the run.
    CPP_ASYNC_IMPORTS="${ASYNCIFY_CPP_IMPORTS:-}" node "$here/cpp.mjs" "$out/cpp" "${cpp_names[@]}" ||
      echo "run.sh: C++ programs under Binaryen's asyncify: failures expected (not counted)"
  else
    CPP_ASYNC_IMPORTS="${ASYNCIFY_CPP_IMPORTS:-}" node "$here/cpp.mjs" "$out/cpp" "${cpp_names[@]}" || status=1
  fi
fi
exit "$status"
