# a disabled feature the module uses is an error
instrument inputs/simd.wat --disable-simd -o $TMP/out.wasm
