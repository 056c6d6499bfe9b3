package engine

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"
)

// manyRolledTopics opens an engine (on tmpfs where there is one) with n
// topics, each holding one sealed segment (released after its seal) and an
// active one (released when idle): every segment that ever opened its
// files passed through the open-segment set.
func manyRolledTopics(tb testing.TB, n int) *Engine {
	tb.Helper()
	dir := tb.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "haraqa-openset-"); err == nil {
			dir = d
			tb.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	opts := Options{Dir: dir, SegmentBytes: 4096, SegmentEntries: 1, QueueLen: 4, IdleRelease: time.Millisecond,
		Fsync: FsyncNever, ScrubBytesPerSec: -1, Logger: quietLogger()}
	e := openEngine(tb, opts)
	batch := batchOf(tb, msgBytes(1, 100))
	for i := range n {
		name := fmt.Sprintf("t%05d", i)
		mustCreate(tb, e, name)
		for range 2 {
			mustAppend(tb, e, name, bytes.Clone(batch))
		}
	}
	return e
}

// BenchmarkReadOpenSegments is the cost of one read of a mapped segment
// while n other segments have passed through the open-segment set (every
// topic that rolled once). A read must not pay for the others: the
// set is trimmed only when over MaxOpenSegments, and each entry is looked
// at a bounded number of times.
func BenchmarkReadOpenSegments(b *testing.B) {
	for _, n := range []int{500, 4000, 10000} {
		b.Run(fmt.Sprintf("segments=%d", n), func(b *testing.B) {
			e := manyRolledTopics(b, n)
			var res ReadResult
			defer res.Release()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := e.Read("t00000", 0, 1, 1<<20, &res); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// tracked returns how many segments the open-segment set holds.
func (o *openSet) tracked() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.idx)
}

// A read costs the same however many segments opened their files before
// it: segments that went cold by other means (sealed and released, idle)
// leave the open-segment set instead of being carried and looked at on
// every read, and sealed segments read past the cap are closed again.
func TestOpenSetDropsColdSegments(t *testing.T) {
	e := manyRolledTopics(t, 60)
	e.opts.MaxOpenSegments = 8
	if n := e.open.tracked(); n <= 8 {
		t.Fatalf("only %d segments tracked after building 60 topics: the test needs more", n)
	}
	var res ReadResult
	defer res.Release()
	for i := range 60 {
		if err := e.Read(fmt.Sprintf("t%05d", i), 0, 1, 1<<20, &res); err != nil {
			t.Fatal(err)
		}
	}
	res.Release()
	if err := e.Read("t00000", 0, 1, 1<<20, &res); err != nil {
		t.Fatal(err)
	}
	if n := e.open.tracked(); n > 8 {
		t.Fatalf("%d segments tracked after reads, cap 8", n)
	}
	loaded := 0
	for i := range 60 {
		for _, s := range e.topics[fmt.Sprintf("t%05d", i)].segments() {
			if s.Loaded() {
				loaded++
			}
		}
	}
	if loaded > 8+1 {
		t.Fatalf("%d segments hold their files open, cap 8 (+1 active)", loaded)
	}
}
