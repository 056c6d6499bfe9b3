package engine

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Promise (bounded fds and mappings): a scrub pass
// keeps no more than MaxOpenSegments sealed segments open.
func TestScrubKeepsOpenSegmentsWithinCap(t *testing.T) {
	opts := osOpts(t)
	opts.MaxOpenSegments = 2
	opts.SegmentBytes = 4096
	opts.MaxBatchBytes = 4096
	opts.ScrubBytesPerSec = -1
	// The active segment keeps its files for the whole test: on a loaded
	// machine the appends can outlast the idle release, and a scrub that
	// opened the released active segment again counted against the cap.
	opts.IdleRelease = time.Hour
	e := openEngine(t, opts)
	mustCreate(t, e, "a")
	for i := 0; i < 200; i++ {
		mustAppend(t, e, "a", batchOf(t, genMsgs(uint64(i), 1, 500)...))
	}
	// The engine's descriptors: those open on files under its directory
	// (other tests' and the runtime's come and go meanwhile).
	fds := func() int {
		d, _ := os.ReadDir("/proc/self/fd")
		n := 0
		for _, f := range d {
			if target, err := os.Readlink("/proc/self/fd/" + f.Name()); err == nil && strings.HasPrefix(target, opts.Dir+"/") {
				n++
			}
		}
		return n
	}
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
