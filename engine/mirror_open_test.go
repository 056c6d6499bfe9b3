package engine

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// Promise (startup reconciliation): a volume that
// fails while it is being repaired at open is fenced on its own. The copies
// it held stay the sources of the other volumes' repairs: no healthy
// volume is fenced because of it, and the topic opens whole.
func TestMirrorRepairFailureFencesOnlyThatVolume(t *testing.T) {
	f := newMirrorFixture(t)
	img := f.closeImage(t)
	// v1 needs segment 2 back; v3 needs segment 1, whose first good copy
	// (the source) is v1's.
	mustCorrupt(t, img, seg("/v1", "t", 2, "log"), cut(100))
	mustCorrupt(t, img, seg("/v3", "t", 1, "log"), cut(100))
	fl := newFaults(img, syscall.EIO, vfs.OpCreate)
	fl.set(true, "/v1")
	e, _ := f.open(t, img)
	vi := volState(t, e, "/v1")
	if vi.State != VolumeFenced || !strings.Contains(vi.Reason, "repair") {
		t.Fatalf("v1 after its repair failed: %+v", vi)
	}
	wantStates(t, e, VolumeFenced, VolumeHealthy, VolumeHealthy)
	f.check(t, e)
	sameFiles(t, img, "t", "/v2", "/v3")
	if st := e.Stats(); st.VolumesFenced != 1 || st.SegmentsRepaired != 1 {
		t.Fatalf("stats %+v: want v1 fenced and v3's segment repaired", st)
	}
	fl.set(false, "/v1")
	e.CheckVolumes()
	wantStates(t, e, VolumeHealthy, VolumeHealthy, VolumeHealthy)
	sameFiles(t, img, "t", vols3...)
	f.check(t, e)
}

// Promise (reconciliation): a volume that was out
// of service while truncation (or retention) removed the topic's oldest
// segments from the others comes back at the next open holding only
// segments below the topic's start. It neither makes the topic read-only
// nor hides its newest data: the topic starts where the others say, the
// stale copy is caught up, its leftovers go.
func TestMirrorStaleVolumeBelowStart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := "clean"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			fs := vfs.NewMemFS()
			fl := newFaults(fs, syscall.EIO, vfs.OpWrite)
			opts := mirrorOpts(fs, vols3...)
			e := openEngine(t, opts)
			mustCreate(t, e, "t")
			m := newModel()
			for i := range 10 {
				m.appendBatch(t, e, "t", genMsgs(uint64(i)*4, 4, 100))
			}
			fl.set(true, "/v2")
			for i := range 120 { // several rolls without v2
				m.appendBatch(t, e, "t", genMsgs(1000+uint64(i)*4, 4, 100))
			}
			wantStates(t, e, VolumeHealthy, VolumeFenced, VolumeHealthy)
			start, err := e.TruncateBefore(context.Background(), "t", 300)
			if err != nil || start <= 40 {
				t.Fatalf("TruncateBefore = %d, %v; want a start above v2's data", start, err)
			}
			fl.set(false, "/v2")
			img := fs.Crash()
			if !crash {
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				img = fs.Crash()
			}
			e2, rec := (&mirrorFixture{opts: opts}).open(t, img)
			info := describe(t, e2, "t")
			if info.ReadOnly != nil || info.Start != start || info.End != m.next {
				t.Fatalf("reopened %+v, want [%d, %d) and writable", info, start, m.next)
			}
			m.check(t, e2, "t", start)
			wantStates(t, e2, VolumeHealthy, VolumeHealthy, VolumeHealthy)
			sameFiles(t, img, "t", vols3...)
			if rec.count("only volumes out of date hold") != 1 {
				t.Fatalf("leftovers not reported: %q", rec.msgs)
			}
			m.appendBatch(t, e2, "t", genMsgs(9e6, 4, 100))
			m.check(t, e2, "t", start)
		})
	}
}

// Promise (volume states): a volume fenced again while it is
// being rebuilt is not put back in service by the rebuild; the next health
// check rebuilds it once it works. Topics created while it was out get a
// mirror on it when it rejoins.
func TestMirrorFencedDuringRebuild(t *testing.T) {
	f := newMirrorFixture(t)
	e := f.e
	v3 := e.vols[2]
	if err := f.fs.Remove("/v3/" + volumeName); err != nil {
		t.Fatal(err)
	}
	e.CheckVolumes()
	wantStates(t, e, VolumeHealthy, VolumeHealthy, VolumeFenced)
	replaceDisk(t, f.fs, "/v3")
	mustCreate(t, e, "w") // created without v3
	mw := newModel()
	mw.appendBatch(t, e, "w", genMsgs(0, 3, 30))
	if got := mirrorsOf(t, e, "w"); len(got) != 2 {
		t.Fatalf("new topic mirrors %v", got)
	}
	// While v3's copy of "u" is written, something else fences v3 (as a
	// failed write of another topic would).
	again := errors.New("simulated failure during the rebuild")
	f.fs.SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.HasPrefix(name, "/v3/topics/u/") {
			e.fenceVolume(v3, again)
		}
		return nil
	})
	e.CheckVolumes()
	f.fs.SetFault(nil)
	vi := volState(t, e, "/v3")
	if vi.State != VolumeFenced || !strings.Contains(vi.Reason, again.Error()) {
		t.Fatalf("v3 fenced during its rebuild ended %+v", vi)
	}
	if v := readVolume(t, e, "u", 0); v == "/v3" {
		t.Fatal("reads served by a fenced volume")
	}
	f.check(t, e)
	e.CheckVolumes()
	wantStates(t, e, VolumeHealthy, VolumeHealthy, VolumeHealthy)
	for _, tp := range []string{"t", "u", "w"} {
		if got := mirrorsOf(t, e, tp); len(got) != 3 {
			t.Fatalf("topic %s mirrors %v after the rebuild", tp, got)
		}
		sameFiles(t, f.fs, tp, vols3...)
	}
	mw.appendBatch(t, e, "w", genMsgs(10, 3, 30))
	mw.check(t, e, "w", 0)
	f.check(t, e)
	if st := e.Stats(); st.VolumesFenced != 2 {
		t.Fatalf("stats %+v: want two fences", st)
	}
}
