# unknown imports that trap when called
run --trap-unknown-imports --invoke run ../../../corpus/demo.wat 2
