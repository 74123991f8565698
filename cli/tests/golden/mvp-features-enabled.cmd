# --mvp-features with it enabled
instrument inputs/simd.wat --mvp-features --enable-simd -o $TMP/out.wasm
