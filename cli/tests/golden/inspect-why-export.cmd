# --why takes an export name
inspect ../../../corpus/demo.wat --why run
