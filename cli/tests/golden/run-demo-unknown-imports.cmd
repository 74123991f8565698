# the demo without import definitions: the message names the flags that define them
run --invoke run ../../../corpus/demo.wat 2
