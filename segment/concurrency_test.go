package segment

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/haraqa/haraqa/record"
)

// TestRemoveWhilePinned: a reader's bytes stay readable after Remove until
// its Release; then the segment cannot be pinned again.
func TestRemoveWhilePinned(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 0, testOpts)
		m := newModel(0)
		fill(t, s, m, 10)
		if !s.Acquire() {
			t.Fatal("Acquire failed")
		}
		r, err := s.Find(3, 100, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b := s.Bytes(r)
		want := m.bytes(r)
		if err := s.Remove(); err != nil {
			t.Fatal(err)
		}
		if e.fileSize(t, LogName(0)) >= 0 || e.fileSize(t, IndexName(0)) >= 0 {
			t.Fatal("files still there after Remove")
		}
		if !bytes.Equal(b, want) {
			t.Fatal("bytes changed after Remove")
		}
		if r2, err := s.Find(0, 1, 0); err != nil || !bytes.Equal(s.Bytes(r2), m.bytes(r2)) {
			t.Fatalf("Find after Remove: %v", err)
		}
		if err := s.Verify(); err != nil {
			t.Fatalf("Verify after Remove: %v", err)
		}
		s.Release()
		if s.Acquire() {
			t.Fatal("Acquire succeeded after Remove and the last Release")
		}
		if err := s.Remove(); err != nil {
			t.Fatalf("second Remove: %v", err)
		}
	})
}

// TestRemoveSealedUnmapped: a reader that pinned a lazily opened sealed
// segment before Remove gets ErrClosed when it reads, not a crash or an
// open error.
func TestRemoveSealedUnmapped(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		sealedSegment(t, e, 0, 5)
		s, _ := mustOpen(t, e, 0, testOpts, false, false)
		if !s.Acquire() {
			t.Fatal("Acquire failed")
		}
		if err := s.Remove(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Find(0, 1, 0); !errors.Is(err, ErrClosed) {
			t.Fatalf("Find = %v, want ErrClosed", err)
		}
		if err := s.Verify(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Verify = %v, want ErrClosed", err)
		}
		s.Release()
		if s.Acquire() {
			t.Fatal("Acquire succeeded")
		}
	})
}

// TestCloseThenRemove: Close and Remove both drop the owner's pin, once:
// a reader's pin survives both.
func TestCloseThenRemove(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 0, testOpts)
		m := newModel(0)
		fill(t, s, m, 4)
		s.Acquire()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := s.Find(0, 100, 1<<20)
		if err != nil || !bytes.Equal(s.Bytes(r), m.bytes(r)) {
			t.Fatalf("read after Close and Remove: %v", err)
		}
		if !s.Acquire() {
			t.Fatal("a second pin failed while one is held")
		}
		s.Release()
		s.Release()
		if s.Acquire() {
			t.Fatal("Acquire succeeded after the last Release")
		}
	})
}

// TestConcurrentReaders runs one writer appending and committing while
// readers Find, read and verify committed ranges, under -race.
func TestConcurrentReaders(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 1000, testOpts)
		defer s.Close()
		// Prebuild the batches: the writer only writes and commits.
		var batches [][]byte
		next, size := uint64(1000), 0
		for i := 0; ; i++ {
			b := mkBatch(t, next, 1+i%4, 8+i%40, int64(i))
			if size+len(b) > int(testOpts.MaxBytes) || len(batches) == int(testOpts.MaxEntries) {
				break
			}
			batches = append(batches, b)
			next += uint64(record.CountOf(b))
			size += len(b)
		}
		var done atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for r := 0; r < 4; r++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, 1))
				reads := 0
				for !done.Load() || reads < 50 {
					if err := readOnce(s, rng); err != nil {
						errs <- err
						return
					}
					reads++
				}
			}(uint64(r))
		}
		for i := 0; i < len(batches); {
			k := min(1+i%3, len(batches)-i)
			if !s.Fits(0, k) {
				break
			}
			if err := s.Write(batches[i : i+k]); err != nil {
				t.Error(err)
				break
			}
			s.Commit()
			i += k
		}
		if err := s.Seal(); err != nil {
			t.Error(err)
		}
		done.Store(true)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// readOnce pins s, reads a random committed range and verifies it.
func readOnce(s *Segment, rng *rand.Rand) error {
	if !s.Acquire() {
		return errors.New("Acquire failed")
	}
	defer s.Release()
	next := s.Next()
	if next == s.Base() {
		return nil
	}
	off := s.Base() + rng.Uint64N(next-s.Base())
	r, err := s.Find(off, 1+rng.Uint64N(200), rng.Int64N(8192))
	if err != nil {
		return err
	}
	if r.First > off || r.Next <= off {
		return errors.New("range does not hold the offset")
	}
	b := s.Bytes(r)
	sc := record.NewScanner(b)
	want := r.First
	for sc.Next() {
		h, err := record.Verify(sc.Batch())
		if err != nil {
			return err
		}
		if h.BaseOffset != want {
			return errors.New("offsets do not continue")
		}
		want = h.NextOffset()
	}
	if sc.Err() != nil || want != r.Next || sc.End() != len(b) {
		return errors.New("range is not whole batches")
	}
	if rng.IntN(20) == 0 {
		if err := s.Verify(); err != nil {
			return err
		}
	}
	if rng.IntN(10) == 0 {
		if _, _, err := s.FindTime(rng.Int64N(1000)); err != nil {
			return err
		}
	}
	return nil
}
