package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// osMirrors opens an engine on two volumes of real files holding topic "t"
// with sealed segments (the mirror fixture's geometry), and returns it with
// its model.
func osMirrors(t *testing.T) (*Engine, *model, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	opts := mirrorOpts(vfs.OSFS{}, filepath.Join(t.TempDir(), "v1"), filepath.Join(t.TempDir(), "v2"))
	opts.Logger = rec.logger()
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range fxBatches {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*fxBatchMsgs, fxBatchMsgs, fxMsgBytes))
	}
	return e, m, rec
}

// cutLog truncates the log of segment i of "t" on vol to nothing, under
// whatever mapping the engine holds of it.
func cutLog(t *testing.T, vol string, i int) int64 {
	t.Helper()
	name := seg(vol, "t", i, "log")
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(name, 0); err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// Promise: a segment file cut under its mapping on one volume never kills
// the broker: a read fails over to the other mirror, and the repair that
// read queues (on the topic's writer) verifies the cut copy without a
// crash and replaces it; every message stays readable.
func TestCutMappedLogReadRepairNoCrash(t *testing.T) {
	e, m, _ := osMirrors(t)
	vol := readVolume(t, e, "t", 0) // maps segment 0 on the reading volume
	size := cutLog(t, vol, 0)
	m.check(t, e, "t", 0) // served from the other mirror
	writerBarrier(t, e, "t")
	if st, err := os.Stat(seg(vol, "t", 0, "log")); err != nil || st.Size() != size {
		t.Fatalf("cut log after the repair: %v, %v; want %d bytes again", st, err, size)
	}
	if st := e.Stats(); st.CorruptionsFound == 0 || st.SegmentsRepaired != 1 {
		t.Fatalf("stats %+v: want the damage counted and one segment repaired", st)
	}
	m.check(t, e, "t", 0)
}

// Promise: the scrubber checking a segment whose file was cut under its
// mapping reports it as damage and has it repaired; it does not crash.
func TestCutMappedLogScrubNoCrash(t *testing.T) {
	e, m, rec := osMirrors(t)
	if bad := e.Scrub(0); bad != 0 { // maps every sealed segment
		t.Fatalf("scrub of healthy mirrors found %d bad copies", bad)
	}
	tp, _ := e.topic("t")
	vol := tp.view.Load().mirrors[0].vol.dir
	size := cutLog(t, vol, 1)
	if bad := e.Scrub(0); bad != 1 {
		t.Fatalf("scrub found %d bad copies, want 1 (log: %q)", bad, rec.msgs)
	}
	if st, err := os.Stat(seg(vol, "t", 1, "log")); err != nil || st.Size() != size {
		t.Fatalf("cut log after the scrub's repair: %v, %v; want %d bytes again", st, err, size)
	}
	if bad := e.Scrub(0); bad != 0 {
		t.Fatalf("scrub after the repair found %d bad copies", bad)
	}
	m.check(t, e, "t", 0)
}
