package server

import (
	"testing"

	"github.com/haraqa/haraqa/engine"
)

// Promise (STYLE.md practice 5): steady-state produce and consume handling
// allocates a small, bounded number of objects per request. Measured over a
// TCP socket with a client that allocates nothing, so the count is the
// server's and the engine's. Today it is 1: the closure of the goroutine
// that handles the request (BenchmarkRoundTrip reports it too).
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	const maxAllocs = 2
	for _, c := range []struct {
		op   string
		mode ConsumeMode
	}{{"produce", ConsumeWritev}, {"consume", ConsumeWritev}, {"consume", ConsumeSendfile}} {
		t.Run(c.op+"/"+modeName(c.mode), func(t *testing.T) {
			e := openEngine(t, engine.Options{Fsync: engine.FsyncNever})
			ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true, ConsumeMode: c.mode})
			p := mustDial(t, ts, "")
			frame, check := roundTripFrames(t, p, c.op)
			pipeline(t, p, 200, 1, frame, check) // warm pools and buffers
			allocs := testing.AllocsPerRun(500, func() { pipeline(t, p, 1, 1, frame, check) })
			t.Logf("%s: %.2f allocations per request", c.op, allocs)
			if allocs > maxAllocs {
				t.Fatalf("%s: %.2f allocations per request, want at most %d", c.op, allocs, maxAllocs)
			}
		})
	}
}
