package server

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
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
		op       string
		mode     ConsumeMode
		observed bool // with a RequestObserver and an engine Observer (metrics)
	}{{"produce", ConsumeWritev, false}, {"consume", ConsumeWritev, false}, {"consume", ConsumeSendfile, false},
		{"produce", ConsumeWritev, true}, {"consume", ConsumeWritev, true}} {
		name := c.op + "/" + modeName(c.mode)
		if c.observed {
			name += "/observed"
		}
		t.Run(name, func(t *testing.T) {
			var obs *countingObserver
			eopts, sopts := engine.Options{Fsync: engine.FsyncNever}, Options{AutoCreateTopics: true, ConsumeMode: c.mode}
			if c.observed {
				obs = &countingObserver{}
				eopts.Observer, sopts.Observer = obs, obs
			}
			e := openEngine(t, eopts)
			ts := startServer(t, e, "tcp", sopts)
			p := mustDial(t, ts, "")
			frame, check := roundTripFrames(t, p, c.op)
			pipeline(t, p, 200, 1, frame, check) // warm pools and buffers
			allocs := testing.AllocsPerRun(500, func() { pipeline(t, p, 1, 1, frame, check) })
			t.Logf("%s: %.2f allocations per request", c.op, allocs)
			if allocs > maxAllocs {
				t.Fatalf("%s: %.2f allocations per request, want at most %d", c.op, allocs, maxAllocs)
			}
			if obs != nil && obs.requests.Load() == 0 {
				t.Fatal("the observer saw no request")
			}
		})
	}
}

// countingObserver counts what the server and engine report, as metrics
// would, with atomics.
type countingObserver struct{ requests, syncs, groups atomic.Int64 }

func (o *countingObserver) ObserveRequest(op netproto.Opcode, d time.Duration) { o.requests.Add(1) }
func (o *countingObserver) ObserveSync(d time.Duration)                        { o.syncs.Add(1) }
func (o *countingObserver) ObserveGroup(batches, bytes int)                    { o.groups.Add(1) }
