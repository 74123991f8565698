# the summary line of a plain instrument
instrument inputs/sleepy.wat -o $TMP/out.wasm
