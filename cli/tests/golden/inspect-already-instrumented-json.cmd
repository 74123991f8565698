# the same as JSON
inspect inputs/already.wat --json
