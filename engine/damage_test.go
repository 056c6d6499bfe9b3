package engine

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// damagedTopic writes 40 batches of 10 messages (offsets 0..399) to "t"
// on one volume, sealing segments of 16 KiB, closes the engine, applies
// corrupt to the first segment's log (batches of size bytes each, back to
// back), and opens it again: the damage is in a sealed segment, trusted at
// open and found by reads.
func damagedTopic(t *testing.T, corrupt func(b []byte, size int) []byte) (*Engine, *model, vfs.FS) {
	t.Helper()
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentBytes = 16 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	var size int
	for i := range 40 {
		msgs := genMsgs(uint64(i)*10, 10, 100)
		size = len(batchOf(t, msgs...))
		m.appendBatch(t, e, "t", msgs)
	}
	tp, _ := e.topic("t")
	first := tp.segments()[0]
	if first.Next() < 100 {
		t.Fatalf("first segment ends at %d: too small for the test", first.Next())
	}
	log := filepath.Join(first.Dir(), segment.LogName(0))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Corrupt(log, func(b []byte) []byte { return corrupt(b, size) }); err != nil {
		t.Fatal(err)
	}
	return openEngine(t, opts), m, fs
}

// wantDamage checks that a read at off fails with a *CorruptError naming
// exactly the offsets [first, next) and matching ErrCorrupt.
func wantDamage(t *testing.T, e *Engine, off, first, next uint64) {
	t.Helper()
	var res ReadResult
	defer res.Release()
	err := e.Read("t", off, 1000, 1<<20, &res)
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || len(res.Chunks) != 0 {
		t.Fatalf("Read(%d) = %v with %d chunks, want a *CorruptError", off, err, len(res.Chunks))
	}
	if ce.First != first || ce.Next != next {
		t.Fatalf("Read(%d): damage named as [%d, %d), want [%d, %d): %v", off, ce.First, ce.Next, first, next, err)
	}
}

// Promise: one damaged batch (no healthy copy) hides nothing before it.
// A read whose byte budget covers the damage returns the good batches
// before it; the read that starts at the damage fails with ErrCorrupt
// naming exactly the damaged offsets; a reader that skips them reads on.
func TestReadReturnsGoodBatchesBeforeDamage(t *testing.T) {
	for _, tc := range []struct {
		name        string
		from, to    int // damaged batches [from, to)
		corrupt     func(b []byte, size, from, to int) []byte
		incompleted bool
	}{
		{"bit flip in one batch", 5, 6, func(b []byte, size, from, _ int) []byte {
			b[from*size+200] ^= 1
			return b
		}, false},
		// A zeroed run of pages reads as an incomplete batch: damage too.
		{"three batches zeroed", 5, 8, func(b []byte, size, from, to int) []byte {
			clear(b[from*size : to*size])
			return b
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, m, _ := damagedTopic(t, func(b []byte, size int) []byte { return tc.corrupt(b, size, tc.from, tc.to) })
			first, next := uint64(tc.from*10), uint64(tc.to*10)
			var res ReadResult
			// A read from the start with a budget that covers the damage.
			if err := e.Read("t", 0, 1000, 1<<20, &res); err != nil {
				t.Fatalf("Read(0) with the damage in its budget: %v", err)
			}
			if got := res.Next(); got != first {
				t.Fatalf("Read(0) returned offsets up to %d, want the good ones up to %d", got, first)
			}
			res.Release()
			(&model{msgs: m.msgs, next: first}).check(t, e, "t", 0)
			for _, off := range []uint64{first, first + 3, next - 1} {
				wantDamage(t, e, off, first, next)
			}
			m.check(t, e, "t", next) // skipping the damage reads on
			if st := e.Stats(); st.CorruptionsFound == 0 {
				t.Fatalf("stats %+v: the damage was not counted", st)
			}
		})
	}
}

// Promise: a zeroed page inside committed data is corruption like a bad
// checksum, never a retriable internal error: a read with no healthy copy
// fails with ErrCorrupt, the damage is counted, and with a healthy mirror
// the read is served from it and the zeroed copy repaired.
func TestZeroedPageIsCorruption(t *testing.T) {
	t.Run("no mirror", func(t *testing.T) {
		e, _, _ := damagedTopic(t, func(b []byte, size int) []byte {
			clear(b[3*size : 4*size])
			return b
		})
		err := readErr(e, "t", 30, 1)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("read of a zeroed batch: %v, want ErrCorrupt", err)
		}
		if st := e.Stats(); st.CorruptionsFound == 0 {
			t.Fatalf("stats %+v: the zeroed batch was not counted", st)
		}
	})
	t.Run("mirror", func(t *testing.T) {
		f := newMirrorFixture(t)
		vol := readVolume(t, f.e, "t", 0)
		size := len(batchOf(t, genMsgs(0, fxBatchMsgs, fxMsgBytes)...))
		mustCorrupt(t, f.fs, seg(vol, "t", 1, "log"), func(b []byte) []byte {
			clear(b[2*size : 3*size])
			return b
		})
		f.check(t, f.e) // served from another mirror
		writerBarrier(t, f.e, "t")
		if st := f.e.Stats(); st.CorruptionsFound == 0 || st.SegmentsRepaired != 1 {
			t.Fatalf("stats %+v: want the zeroed batch counted and its segment repaired", st)
		}
		sameFiles(t, f.fs, "t", vols3...)
	})
}
