# --cache-dir and --no-cache do not go together
run --no-cache --cache-dir $TMP/c ../../../corpus/demo.wat
