package engine

import (
	"context"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// Under fsync=never, everything below the end Sync returns survives a
// crash: package cluster drops Raft log entries on that promise.
func TestSyncMakesAppendsDurable(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.Fsync = FsyncNever
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 20 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)<<16, 3, 50))
	}
	// Without Sync the crash image lacks the unsynced tail (the check
	// below would not prove anything otherwise).
	o := opts
	o.FS = fs.Crash()
	c := openEngine(t, o)
	if end := endOf(t, c, "t"); end == m.next {
		t.Fatalf("crash image before Sync holds all %d messages: the test cannot tell", end)
	}
	c.Close()
	end, err := e.Sync(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	if end != m.next {
		t.Fatalf("Sync returned end %d, want %d", end, m.next)
	}
	o.FS = fs.Crash()
	c = openEngine(t, o)
	if got := endOf(t, c, "t"); got != end {
		t.Fatalf("after Sync and a crash the end is %d, want %d", got, end)
	}
	(&model{msgs: m.msgs, next: end}).check(t, c, "t", 0)
	if _, err := e.Sync(context.Background(), "nope"); err == nil {
		t.Fatal("Sync of a missing topic succeeded")
	}
}
