#!/usr/bin/env bash
# Rebuilds the `asyncify run` dynamic-linking fixtures (clang 14, lld 14, no libc).
set -euxo pipefail
cd "$(dirname "$0")"
COMMON="--target=wasm32-unknown-emscripten -O1 -fno-builtin -nostdlib -fuse-ld=lld"
mkdir -p so
clang-14 $COMMON -fPIC -fvisibility=default -Wl,-shared -Wl,--experimental-pic \
  -Wl,--export-dynamic -Wl,--allow-undefined -o so/libgreet.so greet_lib.c
cp so/libgreet.so libgreet.wasm
clang-14 $COMMON -mmutable-globals -Wl,--no-entry -Wl,--export-table -Wl,--growable-table \
  -Wl,--export=__stack_pointer -Wl,--allow-undefined -o greet_main.exe.wasm greet_main.c
clang-14 $COMMON -fPIC -fvisibility=default -Wl,-pie -Wl,--experimental-pic -Wl,--import-memory \
  -Wl,--export-dynamic -Wl,--no-entry -Wl,--allow-undefined -o greet_main.pie.wasm greet_main.c
rm -r so
