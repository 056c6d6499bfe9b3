package engine

// fileLimit is 0 (unknown): Windows has no descriptor limit to read.
func fileLimit() int { return 0 }
