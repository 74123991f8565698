# --why with a name that is nothing
inspect ../../../corpus/demo.wat --why nope
