# a text file named .wasm is not a wasm binary, for run too
run inputs/text.wasm
