package engine

import (
	"testing"
	"time"

	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// Promise: a segment that retention deletes while the scrubber checks it
// is not reported as damage: no error log, no corruption counted, no
// repair; the scrub pass goes on.
func TestScrubSkipsSegmentRemovedUnderIt(t *testing.T) {
	fs := vfs.NewMemFS()
	rec := &logRecorder{}
	opts := memOpts(fs)
	opts.Volumes, opts.Dir = []string{"/v1", "/v2"}, ""
	opts.SegmentBytes = 16 << 10
	opts.RetentionBytes = 20 << 10 // keeps the newest segments only
	opts.RetentionInterval, opts.ScrubInterval, opts.HealthInterval = time.Hour, time.Hour, time.Hour
	opts.Logger = rec.logger()
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 60 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 10, 100))
	}
	before := describe(t, e, "t")
	if before.Segments < 4 {
		t.Fatalf("%d segments: too few for the test", before.Segments)
	}
	removed := 0
	testHookScrub = func(tp *Topic, s *segment.Segment) {
		if removed == 0 {
			e.ApplyRetention() // removes s, which the scrubber has pinned
		}
		if !tp.inView(tp.view.Load().mirrors[0].vol, s) && !tp.inView(tp.view.Load().mirrors[1].vol, s) {
			removed++
		}
	}
	defer func() { testHookScrub = nil }()
	if bad := e.Scrub(0); bad != 0 {
		t.Fatalf("scrub found %d bad copies; log: %q", bad, rec.msgs)
	}
	testHookScrub = nil
	after := describe(t, e, "t")
	if removed == 0 || after.Start == before.Start {
		t.Fatalf("retention removed nothing under the scrubber (start %d -> %d)", before.Start, after.Start)
	}
	if st := e.Stats(); st.CorruptionsFound != 0 || st.SegmentsRepaired != 0 {
		t.Fatalf("stats %+v: a segment removed by retention counted as damage", st)
	}
	if n := rec.count("bad segment"); n != 0 {
		t.Fatalf("%d error lines about bad segments: %q", n, rec.msgs)
	}
	m.check(t, e, "t", after.Start)
	if bad := e.Scrub(0); bad != 0 {
		t.Fatalf("the next scrub found %d bad copies", bad)
	}
}

// Promise: the first scrub pass and the first retention run do not start
// at the same moment after an open (they collided reliably when both
// waited one minute).
func TestFirstScrubOffRetentionTicks(t *testing.T) {
	for _, c := range []struct{ scrub, retention time.Duration }{
		{time.Minute, time.Minute},
		{2 * time.Minute, time.Minute},
		{time.Minute, 30 * time.Second},
		{time.Hour, time.Minute},
		{time.Minute, 0},
	} {
		d := firstScrub(c.scrub, c.retention)
		if d <= 0 || d > c.scrub || (c.retention > 0 && d%c.retention == 0) {
			t.Errorf("scrub every %v, retention every %v: first scrub after %v", c.scrub, c.retention, d)
		}
	}
}
