#!/usr/bin/env bash
# Rebuilds the committed corpus/cpp/*.wasm from the .cpp sources beside them.
# Toolchain used for the committed files: Debian bookworm's `emscripten`
# package, emcc 3.1.6 (clang 14.0.6, wasm-ld 14, Binaryen wasm-opt 108), whose
# prebuilt system libraries include the -fwasm-exceptions variants
# (libc++-except.a, libc++abi-except.a, libunwind-except.a).
#
# Usage: corpus/cpp/build.sh [NAME...]   (NAME without .cpp; default: all)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

command -v em++ >/dev/null || { echo "build.sh: em++ not found (apt-get install emscripten)" >&2; exit 1; }
version="$(em++ --version | head -n 1)"
case "$version" in
  *" 3.1.6 "*) ;;
  *) echo "build.sh: warning: expected emcc 3.1.6, got: $version" >&2 ;;
esac

if [ "$#" -gt 0 ]; then
  names=("$@")
else
  names=()
  for f in *.cpp; do names+=("${f%.cpp}"); done
fi

# -fwasm-exceptions     C++ exceptions as WebAssembly (legacy) exception
#                       handling: try / catch / catch_all / rethrow / delegate
# --no-entry            a library (reactor): no main, exports only
# -sSTANDALONE_WASM     no JS glue; the few runtime imports are WASI ones
# -sERROR_ON_UNDEFINED_SYMBOLS=0
#                       env.wait / env.log are imports (import_module
#                       attributes), not symbols of emscripten's JS library
# --profiling-funcs     keeps the name section (function names in errors)
# -sINITIAL_MEMORY / -sTOTAL_STACK
#                       a 1 MiB memory with a 64 KiB stack; the data starts at
#                       1024 (emscripten's GLOBAL_BASE), so 0..1024 is free for
#                       the asyncify-wasm runtime's header and buffer (16..1024)
flags=(-std=c++17 -fwasm-exceptions --no-entry -sSTANDALONE_WASM
  -sERROR_ON_UNDEFINED_SYMBOLS=0 --profiling-funcs
  -sINITIAL_MEMORY=1048576 -sTOTAL_STACK=65536)

for name in "${names[@]}"; do
  [ -f "$name.cpp" ] || { echo "build.sh: no $name.cpp" >&2; exit 1; }
  for opt in O0 O2; do
    echo "em++ -$opt ${flags[*]} -o $name-$opt.wasm $name.cpp"
    # emcc warns about the two undefined (imported) symbols; nothing else is
    # expected on stderr.
    em++ "-$opt" "${flags[@]}" -o "$name-$opt.wasm" "$name.cpp" 2>&1 |
      { grep -v -e 'undefined symbol: \(wait\|log\)' || true; } >&2
    [ -f "$name-$opt.wasm" ] || { echo "build.sh: $name-$opt.wasm was not built" >&2; exit 1; }
    chmod 644 "$name-$opt.wasm"  # emcc marks its output executable
  done
done
