# --why on imports says what calls to them do, by name-section name or module.name
inspect ../../../corpus/demo.wat --imports env.fetch --why fetch --why env.log
