//go:build race

package engine

// raceEnabled: under the race detector sync.Pool drops items at random,
// so allocation counts that rely on a pool are not exact.
const raceEnabled = true
