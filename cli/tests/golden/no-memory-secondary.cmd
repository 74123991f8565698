# no memory, with --secondary-memory
instrument inputs/nomem.wat --secondary-memory -o $TMP/out.wasm
