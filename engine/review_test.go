package engine

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// Promise: retention deleting a segment a slow reader
// holds never unmaps it under the reader, even when the open-segment cap
// trims.
func TestReviewTrimUnmapsRemovedPinned(t *testing.T) {
	opts := osOpts(t)
	opts.MaxOpenSegments = 1
	opts.SegmentBytes = 4096
	opts.MaxBatchBytes = 4096
	e := openEngine(t, opts)
	mustCreate(t, e, "a")
	for i := 0; i < 40; i++ {
		mustAppend(t, e, "a", batchOf(t, genMsgs(uint64(i), 1, 500)...))
	}
	var slow ReadResult
	if err := e.Read("a", 0, 1, 1, &slow); err != nil || len(slow.Chunks) == 0 {
		t.Fatal(err)
	}
	want := string(slow.Chunks[0].Data())
	// retention/truncation removes segment 0 while slow holds it
	if _, err := e.TruncateBefore(context.Background(), "a", 20); err != nil {
		t.Fatal(err)
	}
	// another reader maps other sealed segments: trim runs
	var r ReadResult
	for off := uint64(20); off < 30; off++ {
		if err := e.Read("a", off, 1, 1, &r); err != nil {
			t.Fatal(err)
		}
	}
	r.Release()
	got := string(slow.Chunks[0].Data()) // slow reader now writes its response
	if got != want {
		t.Fatal("data changed")
	}
	slow.Release()
}

// Promise (a clean shutdown syncs everything, fsync=never included): an
// active segment whose files were let go while idle is still synced by
// Close.
func TestReviewNeverIdleReleaseCloseNotSynced(t *testing.T) {
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
	time.Sleep(200 * time.Millisecond) // writer releases the idle active segment
	if err := e.Close(); err != nil {  // clean shutdown: promised to sync
		t.Fatal(err)
	}
	e2, _ := crashOpen(t, fs, opts) // power loss after the clean shutdown
	if got := endOf(t, e2, "a"); got != 5 {
		t.Fatalf("after clean shutdown + power loss under fsync=never: end %d, want 5; info %+v", got, describe(t, e2, "a"))
	}
}

// Promise (bounded fds and mappings): a scrub pass
// keeps no more than MaxOpenSegments sealed segments open.
func TestReviewScrubLeavesAllMapped(t *testing.T) {
	opts := osOpts(t)
	opts.MaxOpenSegments = 2
	opts.SegmentBytes = 4096
	opts.MaxBatchBytes = 4096
	opts.ScrubBytesPerSec = -1
	e := openEngine(t, opts)
	mustCreate(t, e, "a")
	for i := 0; i < 200; i++ {
		mustAppend(t, e, "a", batchOf(t, genMsgs(uint64(i), 1, 500)...))
	}
	fds := func() int { d, _ := os.ReadDir("/proc/self/fd"); return len(d) }
	before := fds()
	e.Scrub(0)
	t.Logf("segments %d; fds before scrub %d, after %d (MaxOpenSegments %d)", len(e.topics["a"].segments()), before, fds(), opts.MaxOpenSegments)
}

// Promise (acknowledged data is never silently truncated): damage below
// the synced offset stays corruption on every later open; the checkpoint
// never drops below what it recorded.
func TestReviewCorruptionForgottenAfterRestart(t *testing.T) {
	f := newTornFixture(t)
	img := f.fs.Crash()
	o := f.opts
	o.FS = img
	if err := openEngine(t, o).Close(); err != nil {
		t.Fatal(err)
	}
	cut := f.lastPos + 10
	img.Corrupt(f.log, func(b []byte) []byte { return append([]byte(nil), b[:cut]...) })
	e := openEngine(t, o)
	info := describe(t, e, "t")
	if info.ReadOnly == nil {
		t.Fatalf("%+v: want read-only", info)
	}
	t.Logf("first open: %+v", info)
	e.Close()
	e2 := openEngine(t, o)
	info2 := describe(t, e2, "t")
	b, _ := img.ReadFile(f.log)
	t.Logf("second open: %+v, log %d bytes (damaged image %d)", info2, len(b), cut)
	if info2.ReadOnly == nil {
		t.Errorf("second open: damage below the synced offset was forgotten")
	}
}
