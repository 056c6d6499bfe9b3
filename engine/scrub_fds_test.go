package engine

import (
	"os"
	"testing"
)

// Promise (bounded fds and mappings): a scrub pass
// keeps no more than MaxOpenSegments sealed segments open.
func TestScrubOpenSegmentsReported(t *testing.T) {
	opts := osOpts(t)
	opts.MaxOpenSegments = 2
	opts.SegmentBytes = 4096
	opts.MaxBatchBytes = 4096
	opts.ScrubBytesPerSec = -1
	e := openEngine(t, opts)
	mustCreate(t, e, "a")
	for i := 0; i < 200; i++ {
		mustAppend(t, e, "a", batchOf(t, genMsgs(uint64(i), 1, 500)...))
	}
	fds := func() int { d, _ := os.ReadDir("/proc/self/fd"); return len(d) }
	before := fds()
	e.Scrub(0)
	t.Logf("segments %d; fds before scrub %d, after %d (MaxOpenSegments %d)", len(e.topics["a"].segments()), before, fds(), opts.MaxOpenSegments)
}
