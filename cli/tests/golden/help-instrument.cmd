# instrument's help, with the wasm-opt spellings
instrument --help
