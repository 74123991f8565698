# -q hides the optimizer note
inputs/sleepy.wat --asyncify -O3 -q -o $TMP/out.wasm
