# a wat error names the file, the same way in instrument, run and inspect
instrument inputs/bad.wat -o $TMP/out.wasm
