# an unknown feature name
instrument inputs/sleepy.wat --enable-teleport -o $TMP/out.wasm
