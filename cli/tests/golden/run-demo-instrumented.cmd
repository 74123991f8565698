# the demo instrumented on the fly
run --instrument --default-values-unknown-imports --invoke run ../../../corpus/demo.wat 2
