package engine

import (
	"context"
	"testing"
)

// Promise: retention deleting a segment a slow reader
// holds never unmaps it under the reader, even when the open-segment cap
// trims.
func TestRetentionKeepsPinnedSegmentUnderOpenCap(t *testing.T) {
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
