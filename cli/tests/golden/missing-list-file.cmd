# a missing @list file: the OS error once
instrument inputs/sleepy.wat --imports @inputs/no-such-list.txt -o $TMP/out.wasm
