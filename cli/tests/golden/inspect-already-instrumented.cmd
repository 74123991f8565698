# an instrumented module can be inspected: it says why instrument refuses it
inspect inputs/already.wat
