# no memory: the message names --secondary-memory
instrument inputs/nomem.wat -o $TMP/out.wasm
