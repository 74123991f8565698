# the budget flags on a module without yield checks say so
run --no-cache --max-budget 100000 --invoke count inputs/spin.wat 10
