//go:build race

package main

// raceEnabled builds the hrq binary under test with -race too.
const raceEnabled = true
