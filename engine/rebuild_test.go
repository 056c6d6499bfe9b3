package engine

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// fenceAndWipe fences vol through the health check (its identity file
// removed) and empties it as a replaced disk (with the marker that lets
// an empty directory join), so that the next check rebuilds it.
func fenceAndWipe(t *testing.T, e *Engine, fs vfs.FS, vol string) {
	t.Helper()
	if err := fs.Remove(vol + "/" + volumeName); err != nil {
		t.Fatal(err)
	}
	e.CheckVolumes()
	if st := volState(t, e, vol); st.State != VolumeFenced {
		t.Fatalf("%s not fenced: %+v", vol, st)
	}
	replaceDisk(t, fs, vol)
}

// A replaced disk is rebuilt whole although one segment of the mirror it
// is rebuilt from turns out damaged: that segment comes from another
// healthy mirror, the damaged copy is repaired, and the volume being
// rebuilt is never fenced for the source's fault.
func TestRebuildBadSourceSegmentFromOtherMirror(t *testing.T) {
	f := newMirrorFixture(t)
	e := f.e
	fenceAndWipe(t, e, f.fs, "/v3")
	if v := readVolume(t, e, "t", 0); v != "/v2" {
		t.Fatalf("reads come from %s, want /v2 (the rebuild's source)", v)
	}
	// Damage a batch of sealed segment 1 on the source, unnoticed so far.
	mustCorrupt(t, f.fs, seg("/v2", "t", 1, "log"), flip(3*500+100))
	e.CheckVolumes()
	wantStates(t, e, VolumeHealthy, VolumeHealthy, VolumeHealthy)
	for _, tp := range []string{"t", "u"} {
		if got := mirrorsOf(t, e, tp); len(got) != 3 {
			t.Fatalf("topic %s mirrors %v after the rebuild", tp, got)
		}
		sameFiles(t, f.fs, tp, vols3...) // v2's bad copy repaired too
	}
	f.check(t, e)
	if st := e.Stats(); st.VolumesFenced != 1 || st.CorruptionsFound == 0 {
		t.Fatalf("stats %+v: want the one fence of the test and the damage counted", st)
	}
	if f.rec.count("source segment damaged") == 0 {
		t.Fatalf("the damaged source was not reported: %q", f.rec.msgs)
	}
	// A restart finds nothing to repair.
	e, _ = f.open(t, f.closeImage(t))
	f.check(t, e)
	if st := e.Stats(); st.SegmentsRepaired != 0 || st.CorruptionsFound != 0 {
		t.Fatalf("restart after the rebuild: %+v", st)
	}
}

// With two volumes, a damaged segment on the only source cannot be
// repaired, but it blocks nothing: every other segment is mirrored on the
// rebuilt volume, which serves reads, the damaged range is reported and
// reads of it fail as corrupt, and appends go to both volumes again.
func TestRebuildBadSourceSegmentTwoVolumes(t *testing.T) {
	fs := vfs.NewMemFS()
	rec := &logRecorder{}
	opts := mirrorOpts(fs, "/v1", "/v2")
	opts.Logger = rec.logger()
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range fxBatches {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*fxBatchMsgs, fxBatchMsgs, fxMsgBytes))
	}
	fenceAndWipe(t, e, fs, "/v2")
	mustCorrupt(t, fs, seg("/v1", "t", 1, "log"), flip(3*500+100))
	e.CheckVolumes()
	wantStates(t, e, VolumeHealthy, VolumeHealthy)
	if got := mirrorsOf(t, e, "t"); len(got) != 2 {
		t.Fatalf("topic mirrors %v after the rebuild", got)
	}
	if v := readVolume(t, e, "t", 0); v != "/v2" {
		t.Fatalf("reads come from %s, want the rebuilt /v2", v)
	}
	sameFiles(t, fs, "t", "/v1", "/v2")
	if st := e.Stats(); st.VolumesFenced != 1 {
		t.Fatalf("stats %+v: the rebuilt volume was fenced for its source's damage", st)
	}
	first, next := batchRange(fxSegBatch + 3)
	if rec.count("source segment damaged") == 0 || rec.count("no good copy") == 0 {
		t.Fatalf("the damaged range was not reported: %q", rec.msgs)
	}
	if err := readErr(e, "t", first, 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of the damaged batch: %v, want ErrCorrupt", err)
	}
	// Everything else reads back, from both sides of the damage.
	before := &model{msgs: m.msgs, next: first}
	before.check(t, e, "t", 0)
	m.check(t, e, "t", next)
	m.appendBatch(t, e, "t", genMsgs(9e6, 4, 100))
	m.check(t, e, "t", next)
	if got := mirrorsOf(t, e, "t"); len(got) != 2 || !strings.HasPrefix(got[1], "/v2") {
		t.Fatalf("topic mirrors %v after an append", got)
	}
	sameFiles(t, fs, "t", "/v1", "/v2")
}

// The same at open: a wiped volume is repopulated although the copy
// reconciliation picked as the source of one segment is damaged (unnoticed
// by the cheap checks of a clean open); the damaged copy is repaired.
func TestReconcileBadSourceSegmentAtOpen(t *testing.T) {
	f := newMirrorFixture(t)
	img := f.closeImage(t)
	replaceDisk(t, img, "/v3")
	mustCorrupt(t, img, seg("/v1", "t", 1, "log"), flip(3*500+100))
	e, rec := f.open(t, img)
	wantStates(t, e, VolumeHealthy, VolumeHealthy, VolumeHealthy)
	writerBarrier(t, e, "t") // the queued repair of v1's copy
	sameFiles(t, img, "t", vols3...)
	sameFiles(t, img, "u", vols3...)
	f.check(t, e)
	if st := e.Stats(); st.VolumesFenced != 0 || rec.count("source segment damaged") == 0 {
		t.Fatalf("stats %+v, log %q", st, rec.msgs)
	}
}

// Shutdown does not wait for a volume rebuild: Close during the rebuild of
// a topic of many segments stops it between segments and returns, and the
// next open completes the rebuild (every segment on both volumes).
func TestCloseDuringRebuild(t *testing.T) {
	const segs = 120
	rfs := newRouteFS("/v1", "/v2")
	opts := mirrorOpts(rfs, "/v1", "/v2")
	opts.SegmentEntries = 1
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, e, "t")
	m := newModel()
	for i := range segs {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*4, 4, 100))
	}
	fenceAndWipe(t, e, rfs, "/v2")
	// The third segment copied to /v2 waits until Close has begun.
	var copies atomic.Int32
	started := make(chan struct{})
	rfs.vols["/v2"].SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.HasSuffix(name, ".log.tmp") && copies.Add(1) == 3 {
			close(started)
			for i := 0; i < 2000 && !e.isClosed(); i++ {
				time.Sleep(5 * time.Millisecond)
			}
		}
		return nil
	})
	go e.CheckVolumes()
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatalf("the rebuild did not start: %+v", e.Volumes())
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := copies.Load(); n >= segs/2 {
		t.Fatalf("Close waited for the rebuild: %d of %d segments copied", n, segs)
	}
	rfs.vols["/v2"].SetFault(nil)
	e = openEngine(t, opts)
	wantStates(t, e, VolumeHealthy, VolumeHealthy)
	sameFiles(t, rfs, "t", "/v1", "/v2")
	m.check(t, e, "t", 0)
	if v := readVolume(t, e, "t", 0); v != "/v2" {
		t.Fatalf("reads come from %s, want /v2", v)
	}
}

// Shutdown does not wait for a large segment copy either: a rebuild
// copying a segment of several chunks stops between chunks once Close has
// begun, and the next open copies the segment whole.
func TestCloseDuringLargeSegmentCopy(t *testing.T) {
	rfs := newRouteFS("/v1", "/v2")
	opts := mirrorOpts(rfs, "/v1", "/v2")
	opts.SegmentBytes, opts.SegmentEntries = 32<<20, 20
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 21 { // 20 batches of 1 MiB, sealed when the 21st rolls
		m.appendBatch(t, e, "t", [][]byte{msgBytes(uint64(i), 1<<20)})
	}
	fenceAndWipe(t, e, rfs, "/v2")
	var writes atomic.Int32
	started := make(chan struct{})
	rfs.vols["/v2"].SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && strings.HasSuffix(name, ".log.tmp") && writes.Add(1) == 1 {
			close(started)
			for i := 0; i < 2000 && !e.isClosed(); i++ {
				time.Sleep(5 * time.Millisecond)
			}
		}
		return nil
	})
	go e.CheckVolumes()
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatalf("the rebuild did not start: %+v", e.Volumes())
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := writes.Load(); n != 1 {
		t.Fatalf("the copy went on after Close began: %d chunk writes, want 1", n)
	}
	rfs.vols["/v2"].SetFault(nil)
	e = openEngine(t, opts)
	wantStates(t, e, VolumeHealthy, VolumeHealthy)
	sameFiles(t, rfs, "t", "/v1", "/v2")
	m.check(t, e, "t", 0)
}
