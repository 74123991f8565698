# instrument refuses an instrumented module
instrument inputs/already.wat -o $TMP/out.wasm
