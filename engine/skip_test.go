package engine

import (
	"context"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// Promise: a replica whose peers dropped the offsets it lacks can skip to
// the peers' start: SkipTo drops everything the topic holds, the topic
// then starts and ends at the new offset on every mirror, the next append
// gets exactly that offset, and all of it survives a restart (no gap, no old
// segment back).
func TestSkipToStartsTheLogAtAnOffset(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := mirrorOpts(fs, vols3...)
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	fillSegments(t, e, "t", 3)
	end := endOf(t, e, "t")
	ctx := context.Background()
	if got, err := e.SkipTo(ctx, "t", end-1); err != nil || got != end {
		t.Fatalf("SkipTo below the end: %d, %v; want %d unchanged", got, err, end)
	}
	target := end + 1000
	got, err := e.SkipTo(ctx, "t", target)
	if err != nil || got != target {
		t.Fatalf("SkipTo(%d) = %d, %v", target, got, err)
	}
	check := func(e *Engine, wantEnd uint64) {
		t.Helper()
		s, en, err := e.Offsets("t")
		if err != nil || s != target || en != wantEnd {
			t.Fatalf("offsets [%d, %d), %v; want [%d, %d)", s, en, err, target, wantEnd)
		}
		if d := describe(t, e, "t"); d.Segments != 1 {
			t.Fatalf("%d segments after the skip, want 1", d.Segments)
		}
	}
	check(e, target)
	m := newModel()
	m.next = target
	if off := m.appendBatch(t, e, "t", genMsgs(7, 5, 100)); off != target {
		t.Fatalf("append after the skip at %d, want %d", off, target)
	}
	check(e, target+5)
	m.check(t, e, "t", target)
	e3 := reopen(t, e, opts)
	check(e3, target+5)
	m.check(t, e3, "t", target)
}
