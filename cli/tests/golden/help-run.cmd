# run's help: MODULE and ARGS under Arguments, not Instrumentation
run --help
