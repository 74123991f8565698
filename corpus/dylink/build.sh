#!/usr/bin/env bash
# Rebuilds the committed corpus/dylink/*.wasm from the sources beside them
# (README.md lists each module with its command). Toolchain used for the
# committed files: Debian bookworm's clang-14 / wasm-ld-14 (lld 14) and its
# `emscripten` package, emcc 3.1.6.
#
# Side modules are linked as libNAME.so in a scratch directory (the name a
# main module passes to dlopen, and the name lld writes into a dependent
# library's dylink.0 "needed" list), then copied here as libNAME.wasm.
#
# Usage: corpus/dylink/build.sh   (prints every command it runs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

for tool in clang-14 clang++-14 wasm-ld-14 emcc; do
  command -v "$tool" >/dev/null || {
    echo "build.sh: $tool not found (apt-get install clang-14 lld-14 emscripten)" >&2
    exit 1
  }
done
case "$(emcc --version | head -n 1)" in
  *" 3.1.6 "*) ;;
  *) echo "build.sh: warning: expected emcc 3.1.6, got: $(emcc --version | head -n 1)" >&2 ;;
esac

scratch=so   # removed at the end
rm -rf "$scratch" && mkdir "$scratch"
trap 'rm -rf "$scratch"' EXIT

run() {
  echo "$*"
  "$@"
}

# Flags shared by every clang build: no libc, and no libcall idioms
# (-fno-builtin keeps a byte loop from becoming an import of strlen).
common=(--target=wasm32-unknown-emscripten -O1 -fno-builtin -nostdlib -fuse-ld=lld)
# A side module (the tool-conventions dynamic linking ABI).
side=(-fPIC -fvisibility=default -Wl,-shared -Wl,--experimental-pic
  -Wl,--export-dynamic -Wl,--allow-undefined)
# A main module as a position-independent executable: dylink.0, imports
# env.memory, env.__indirect_function_table, env.__stack_pointer,
# env.__memory_base and env.__table_base; exports its default-visibility
# symbols (functions and data addresses relative to __memory_base).
pie=(-fPIC -fvisibility=default -Wl,-pie -Wl,--experimental-pic
  -Wl,--import-memory -Wl,--export-dynamic -Wl,--no-entry)
# A main module as a plain executable: defines and exports its memory, a
# growable table and __stack_pointer (mutable, hence -mmutable-globals), and
# __heap_base/__data_end (where free memory starts); data addresses are
# absolute.
exe=(-mmutable-globals -Wl,--no-entry -Wl,--export-table -Wl,--growable-table
  -Wl,--export=__stack_pointer -Wl,--export=__heap_base -Wl,--export=__data_end)
# The symbols libcallback.so needs from a main module.
callback_exports=(-Wl,--export=main_counter -Wl,--export=main_hook)

side_c() { # NAME SOURCE [MORE...]: libNAME.wasm from C
  local name="$1"; shift
  run clang-14 "${common[@]}" "${side[@]}" -o "$scratch/lib$name.so" "$@"
  cp "$scratch/lib$name.so" "lib$name.wasm"
}

main_c() { # NAME [EXE-ONLY FLAGS...]: NAME.pie.wasm and NAME.exe.wasm from NAME.c
  local name="$1"; shift
  run clang-14 "${common[@]}" "${pie[@]}" -o "$name.pie.wasm" "$name.c"
  run clang-14 "${common[@]}" "${exe[@]}" "$@" -o "$name.exe.wasm" "$name.c"
}

# Scenario 1: callback.
side_c callback callback_lib.c
run emcc -O1 -fno-builtin -sSIDE_MODULE=1 -o libcallback.emcc.wasm callback_lib.c
main_c callback_main "${callback_exports[@]}"
# emcc's main module: STANDALONE_WASM keeps the JS glue's imports out (what
# is left is env.emscripten_notify_memory_growth and GOT.mem.__heap_base).
run emcc -O1 -fno-builtin -sMAIN_MODULE=2 -sSTANDALONE_WASM -sALLOW_MEMORY_GROWTH=1 \
  -sINITIAL_MEMORY=1048576 -sTOTAL_STACK=65536 --no-entry \
  -sEXPORTED_FUNCTIONS=_run,_main_hook,_main_counter -sERROR_ON_UNDEFINED_SYMBOLS=0 \
  -o callback_main.emcc.wasm callback_main.c 2>&1 |
  { grep -v 'undefined symbol: \(dlopen\|dlsym\|slow_double\|print_str\|print_i32\)' || true; } >&2
# The reference: main and library linked statically into one module.
run clang-14 "${common[@]}" -DSTATIC_LINK -mmutable-globals -Wl,--no-entry \
  -o callback_static.wasm callback_main.c callback_lib.c

# Scenario 2: mutual (A needs B: link A against B's file so dylink.0 names it).
side_c mutual_b mutual_b.c
side_c mutual_a mutual_a.c "$scratch/libmutual_b.so"
main_c mutual_main

# Scenario 3: twice (uses libcallback).
main_c twice_main "${callback_exports[@]}"

# Scenario 4: missing (uses libcallback and libunresolved).
side_c unresolved unresolved_lib.c
main_c missing_main "${callback_exports[@]}"

# Scenario 5: ctor_trap.
side_c ctor_trap ctor_trap_lib.c
main_c ctor_trap_main

# Scenario 6: cpp (C++ without a C++ runtime).
run clang++-14 "${common[@]}" "${side[@]}" -std=c++17 -fno-exceptions -fno-rtti \
  -o "$scratch/libshapes.so" shapes_lib.cpp
cp "$scratch/libshapes.so" libshapes.wasm
main_c cpp_main

# Scenario 7: ctor_wait.
side_c ctor_wait ctor_wait_lib.c
main_c ctor_wait_main

# Scenario 8: nested (a library that dlopens libctor_wait).
side_c nested nested_lib.c
main_c nested_main

# The same scenarios for `asyncify run` (cli/tests/dylink.rs): -DWASI_HOST
# prints through WASI's fd_write and waits through asyncify_host.yield. Plain
# executable mains and the clang libraries, in wasi/, each library under the
# name the guests dlopen (libNAME.so), so `--dir corpus/dylink/wasi::.`
# resolves every one.
mkdir -p wasi
wasi_side() { # NAME SOURCE [MORE...]
  local name="$1"; shift
  run clang-14 "${common[@]}" -DWASI_HOST "${side[@]}" -o "wasi/lib$name.so" "$@"
}
wasi_side callback callback_lib.c
wasi_side mutual_b mutual_b.c
(cd wasi && run clang-14 "${common[@]}" -DWASI_HOST "${side[@]}" -o libmutual_a.so \
  ../mutual_a.c libmutual_b.so)
wasi_side unresolved unresolved_lib.c
wasi_side ctor_trap ctor_trap_lib.c
run clang++-14 "${common[@]}" -DWASI_HOST "${side[@]}" -std=c++17 -fno-exceptions -fno-rtti \
  -o wasi/libshapes.so shapes_lib.cpp
wasi_side ctor_wait ctor_wait_lib.c
wasi_side nested nested_lib.c
for name in callback mutual twice missing ctor_trap cpp ctor_wait nested; do
  extra=()
  case "$name" in callback | twice | missing) extra=("${callback_exports[@]}") ;; esac
  run clang-14 "${common[@]}" -DWASI_HOST "${exe[@]}" "${extra[@]}" \
    -o "wasi/${name}_main.wasm" "${name}_main.c"
done

chmod 644 ./*.wasm wasi/*   # emcc marks its output executable

# The scenarios' outputs, run with synchronous imports by a small JS loader,
# against expected/ (`node sync_run.mjs --write` rewrites them).
if command -v node >/dev/null; then
  run node sync_run.mjs --check
fi
