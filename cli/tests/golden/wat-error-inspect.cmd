# a wat error names the file, the same way in instrument, run and inspect
inspect inputs/bad.wat
