package engine

import (
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// Promise (a clean shutdown syncs everything, fsync=never included): an
// active segment whose files were let go while idle is still synced by
// Close.
func TestCloseSyncsIdleReleasedSegment(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.Fsync = FsyncNever
	opts.IdleRelease = 20 * time.Millisecond
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, e, "a")
	for i := 0; i < 5; i++ {
		mustAppend(t, e, "a", batchOf(t, genMsgs(uint64(i), 1, 100)...))
	}
	waitCold(t, e, "a")               // the writer released the idle active segment
	if err := e.Close(); err != nil { // clean shutdown: promised to sync
		t.Fatal(err)
	}
	e2, _ := crashOpen(t, fs, opts) // power loss after the clean shutdown
	if got := endOf(t, e2, "a"); got != 5 {
		t.Fatalf("after clean shutdown + power loss under fsync=never: end %d, want 5; info %+v", got, describe(t, e2, "a"))
	}
}
