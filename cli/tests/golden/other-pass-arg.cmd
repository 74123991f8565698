# pass arguments of other wasm-opt passes are ignored with a note
instrument inputs/sleepy.wat --pass-arg=directize-initial-contents-immutable -o $TMP/out.wasm
