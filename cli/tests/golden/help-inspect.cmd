# inspect's help
inspect --help
