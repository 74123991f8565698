# inspect: the summary first, the interface counted
inspect ../../../corpus/demo.wat
