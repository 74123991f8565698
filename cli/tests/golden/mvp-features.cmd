# --mvp-features without the feature the module uses
instrument inputs/simd.wat --mvp-features --enable-mutable-globals -o $TMP/out.wasm
