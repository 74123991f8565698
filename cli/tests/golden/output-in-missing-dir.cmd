# an output in a missing directory: the message names the output, not a temporary file
instrument inputs/sleepy.wat -o $TMP/missing/out.wasm
