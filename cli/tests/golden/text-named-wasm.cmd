# a text file named .wasm is not a wasm binary
instrument inputs/text.wasm -o $TMP/out.wasm
