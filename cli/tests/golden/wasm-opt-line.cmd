# a wasm-opt command line, no subcommand: the optimizer note once
inputs/sleepy.wat --asyncify -O2 -Os -g --all-features -pa asyncify-imports@env.sleep -o $TMP/out.wasm
