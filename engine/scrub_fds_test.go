package engine

import (
	"os"
	"testing"
)

// Promise (bounded fds and mappings): a scrub pass
// keeps no more than MaxOpenSegments sealed segments open.
func TestScrubKeepsOpenSegmentsWithinCap(t *testing.T) {
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
	scrubbed := e.Stats().ScrubBytes
	e.Scrub(0)
	after := fds()
	n := len(e.topics["a"].segments())
	t.Logf("segments %d; fds before scrub %d, after %d (MaxOpenSegments %d)", n, before, after, opts.MaxOpenSegments)
	if n <= 4*opts.MaxOpenSegments {
		t.Fatalf("only %d segments: too few to show the cap", n)
	}
	if e.Stats().ScrubBytes == scrubbed {
		t.Fatal("the scrub pass verified nothing")
	}
	// Each sealed segment the scrub leaves open holds one descriptor.
	if after-before > opts.MaxOpenSegments {
		t.Fatalf("a scrub pass over %d segments left %d more descriptors open; the cap is %d", n, after-before, opts.MaxOpenSegments)
	}
}
