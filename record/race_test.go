//go:build race

package record_test

// raceEnabled: the race detector makes sync.Pool drop items at random,
// and the zstd coders keep pools of their own.
const raceEnabled = true
