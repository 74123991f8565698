# --ignore-imports with --imports is refused instead of instrumenting nothing
instrument inputs/sleepy.wat --ignore-imports --imports env.sleep -o $TMP/out.wasm
