# inspect --interface lists imports and exports after the summary
inspect ../../../corpus/demo.wat --interface
