# an endless loop stopped by its budget (yield checks added by --instrument)
run --no-cache --instrument --max-budget 100000 --invoke spin inputs/spin.wat
