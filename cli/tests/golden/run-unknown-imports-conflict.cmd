# --trap-unknown-imports and --default-values-unknown-imports do not go together
run --trap-unknown-imports --default-values-unknown-imports ../../../corpus/demo.wat
