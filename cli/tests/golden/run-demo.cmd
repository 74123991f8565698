# the demo, as the README runs it
run --default-values-unknown-imports --invoke run ../../../corpus/demo.wat 2
