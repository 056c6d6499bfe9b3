package engine

import (
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// An acknowledged message of a topic recreated after a delete is never
// removed by the old topic's leftover DELETING marker: a volume fenced
// mid-delete keeps the marker (and the old files); when the volume is
// rebuilt, the old delete is finished before the new topic is copied in,
// so that neither a later open (with the other volume unreadable) nor the
// other volume's return deletes the new topic.
func TestDeleteFencedMidDeleteKeepsRecreatedTopic(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := mirrorOpts(fs, "/v1", "/v2")
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	mustAppend(t, e, "t", batchOf(t, msgBytes(1, 10)))
	v2 := e.vols[1]
	var failing atomic.Bool
	fs.SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpRename && name == "/v2/topics/t/DELETING.tmp" {
			// The disk under v2 fails right after the marker was written.
			e.fenceVolume(v2, errors.New("review: disk failing"))
			failing.Store(true)
			return nil
		}
		if failing.Load() && op == vfs.OpRemove && strings.HasPrefix(name, "/v2/topics/t") {
			return syscall.EIO
		}
		return nil
	})
	if err := e.DeleteTopic("t"); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	failing.Store(false)
	fs.SetFault(nil)
	// A new topic of the same name: on v1 only (v2 fenced), then acked data.
	mustCreate(t, e, "t")
	var acked []uint64
	for i := range 5 {
		acked = append(acked, mustAppend(t, e, "t", batchOf(t, msgBytes(uint64(100+i), 10))))
	}
	// v2 is back: the health check rebuilds it; the new "t" gets a mirror there.
	e.CheckVolumes()
	if !v2.healthy() {
		t.Fatalf("v2 not rebuilt")
	}
	if _, err := fs.ReadFile(filepath.Join(topicDir(v2, "t"), deletingName)); err == nil {
		t.Errorf("the new topic's mirror on v2 holds the old topic's DELETING marker")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Restart with v1 unreadable (a disk that is late to mount, say):
	// only v2's mirror of the new topic can serve it.
	fs.SetFault(func(op vfs.Op, name string) error {
		if strings.HasPrefix(name, "/v1/") || name == "/v1" {
			return syscall.EIO
		}
		return nil
	})
	e2, err := Open(opts)
	if err != nil {
		t.Fatalf("open with v1 failing: %v", err)
	}
	defer e2.Close()
	if _, end, err := e2.Offsets("t"); err != nil || end != acked[len(acked)-1]+1 {
		t.Errorf("after restart on v2: topic t end %d err %v; acked up to %d", end, err, acked[len(acked)-1])
	}
	// v1 mounts again: the health check rebuilds it from v2.
	fs.SetFault(nil)
	e2.CheckVolumes()
	if names, _ := fs.List(topicDir(e2.vols[0], "t")); len(names) == 0 {
		t.Errorf("v1 back: its copy of t (the last one) was removed as a stray topic: acked data gone")
	}
}
