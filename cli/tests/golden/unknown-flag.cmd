# an unknown flag is a usage error
instrument inputs/sleepy.wat --no-such-flag
