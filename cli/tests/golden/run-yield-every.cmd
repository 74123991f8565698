# time-slicing: yields every 1000 units, same result
run --no-cache --instrument --yield-every 1000 --invoke count inputs/spin.wat 100000
