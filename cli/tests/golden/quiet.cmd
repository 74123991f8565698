# -q: nothing on success
instrument inputs/sleepy.wat -o $TMP/out.wasm -q
