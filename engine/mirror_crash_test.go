package engine

import (
	"fmt"
	"sync"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

var errCrashed = fmt.Errorf("simulated crash")

// mutating are the MemFS operations that change what a crash keeps.
var mutating = map[vfs.Op]bool{vfs.OpCreate: true, vfs.OpWrite: true, vfs.OpSync: true,
	vfs.OpRename: true, vfs.OpRemove: true, vfs.OpSyncDir: true, vfs.OpTrunc: true}

// crashAfter makes fs fail the crashAt-th change and everything after it
// (nothing happens past a crash); crashAt 0 only counts. It returns the
// number of changes seen so far. The fault function runs under the
// MemFS's lock, which orders n's uses.
func crashAfter(fs *vfs.MemFS, crashAt int) func() int {
	// The fault runs on every goroutine that touches the FS (Close syncs
	// topics in parallel): n is guarded.
	var mu sync.Mutex
	n := 0
	fs.SetFault(func(op vfs.Op, name string) error {
		mu.Lock()
		defer mu.Unlock()
		if crashAt > 0 && n >= crashAt {
			return errCrashed
		}
		if mutating[op] {
			n++
			if n == crashAt {
				return errCrashed
			}
		}
		return nil
	})
	return func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// Promise: a crash at any point of a repair
// (only synced bytes and synced directory entries kept) leaves a state from
// which the next start finishes the repair: every message intact, the
// copies identical, nothing left for the scrubber. The power goes before
// each file-system change that the repair makes, for the three repairs:
// at open (a segment cut on one volume, another volume wiped), by the
// scrubber (a flipped byte), and the rebuild of a volume deleted while
// running.
func TestMirrorCrashDuringRepair(t *testing.T) {
	f := newMirrorFixture(t)
	clean := f.closeImage(t)
	for _, mode := range []struct {
		name   string
		damage func(img *vfs.MemFS)
		// run runs the repair on img; arm starts the crash countdown.
		run func(img *vfs.MemFS, arm func())
	}{
		{"open", func(img *vfs.MemFS) {
			mustCorrupt(t, img, seg("/v2", "t", 1, "log"), cut(1000))
			replaceDisk(t, img, "/v3")
		}, func(img *vfs.MemFS, arm func()) {
			arm()
			if e, err := Open(f.opts2(img)); err == nil {
				e.Close()
			}
		}},
		{"scrub", func(img *vfs.MemFS) {
			mustCorrupt(t, img, seg("/v2", "t", 1, "log"), flip(700))
		}, func(img *vfs.MemFS, arm func()) {
			e, err := Open(f.opts2(img))
			if err != nil {
				t.Fatal(err)
			}
			arm()
			e.Scrub(0)
			e.Close()
		}},
		{"rebuild", func(*vfs.MemFS) {}, func(img *vfs.MemFS, arm func()) {
			e, err := Open(f.opts2(img))
			if err != nil {
				t.Fatal(err)
			}
			if err := img.Remove("/v3/" + volumeName); err != nil {
				t.Fatal(err)
			}
			e.CheckVolumes()
			replaceDisk(t, img, "/v3")
			arm()
			e.CheckVolumes()
			e.Close()
		}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			base := clean.Crash()
			mode.damage(base)
			var changes func() int
			img := base.Crash()
			mode.run(img, func() { changes = crashAfter(img, 0) })
			total := changes()
			if total < 10 {
				t.Fatalf("the repair made only %d changes", total)
			}
			step := 1
			if testing.Short() {
				step = 7
			}
			for at := 1; at <= total; at += step {
				img := base.Crash()
				mode.run(img, func() { crashAfter(img, at) })
				after := img.Crash() // the power went at change number at
				e, _ := f.open(t, after)
				f.check(t, e)
				writerBarrier(t, e, "t")
				// A flip in a sealed log is the scrubber's to find; other
				// damage the open must have repaired.
				if bad := e.Scrub(0); bad != 0 && mode.name != "scrub" {
					t.Fatalf("crash at change %d of %d: the open left %d bad copies", at, total, bad)
				}
				if bad := e.Scrub(0); bad != 0 {
					t.Fatalf("crash at change %d of %d: a second scrub found %d bad copies", at, total, bad)
				}
				wantStates(t, e, VolumeHealthy, VolumeHealthy, VolumeHealthy)
				sameFiles(t, after, "t", vols3...)
				sameFiles(t, after, "u", vols3...)
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("crashed at each of %d changes", total)
		})
	}
}
