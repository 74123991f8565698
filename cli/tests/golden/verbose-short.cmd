# -v: why each function is instrumented
instrument inputs/sleepy.wat -o $TMP/out.wasm -v
