# top-level help
--help
