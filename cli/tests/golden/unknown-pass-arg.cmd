# an unknown asyncify pass argument is still an error
instrument inputs/sleepy.wat --pass-arg=asyncify-sleep -o $TMP/out.wasm
