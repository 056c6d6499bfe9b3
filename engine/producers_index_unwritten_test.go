package engine

import (
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// A retried batch that was acknowledged is answered with its offset, never
// stored twice, even when the active segment's index could not be written:
// after a crash the open rebuilds that index, and when writing the .idx file
// fails (full disk) the index lives only in memory; the producer state must
// still be rebuilt from it.
func TestProducerRetryAfterCrashWhenIndexUnwritten(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	pid := e.NewProducerID()
	var bases []uint64
	for seq := range uint32(5) {
		b, err := e.Append(t.Context(), "t", idemBatch(t, pid, seq, uint64(seq)))
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, b)
	}
	img := fs.Crash() // power loss: no clean shutdown, no PRODUCERS file
	e.Close()
	var on atomic.Bool
	on.Store(true)
	img.SetFault(failOn(&on, vfs.OpWrite, ".idx", syscall.ENOSPC))
	e2 := openEngine(t, memOpts(img))
	on.Store(false)
	defer e2.Close()
	wantDuplicate(t, e2, pid, 4, bases[4])
}

// The producer checkpoint written after the active segment let its files
// go (file-descriptor pressure, an idle topic) records the header hash of
// the batch it ends at, so the next open trusts it instead of rejecting it
// as not matching the log: the hash is read through the in-memory index.
func TestProducerCheckpointTagAfterActiveRelease(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	defer e.Close()
	mustCreate(t, e, "t")
	pid := e.NewProducerID()
	for seq := range uint32(5) {
		if _, err := e.Append(t.Context(), "t", idemBatch(t, pid, seq, uint64(seq))); err != nil {
			t.Fatal(err)
		}
	}
	tp, err := e.topic("t")
	if err != nil {
		t.Fatal(err)
	}
	_, end, _ := e.Offsets("t")
	before := lastTag(tp, end)
	if before == 0 {
		t.Fatal("no tag for the last batch while the segment is loaded")
	}
	segs := tp.segments()
	if !segs[len(segs)-1].ReleaseIdle() {
		t.Fatal("active segment not released")
	}
	if got := lastTag(tp, end); got != before {
		t.Fatalf("tag after release %#x, want %#x", got, before)
	}
}
