package segment

import (
	"bytes"
	"errors"
	"testing"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// TestRoundTrip appends batches in groups, then reads every offset back,
// on a segment with a non-zero base.
func TestRoundTrip(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 1000, testOpts)
		defer s.Close()
		m := newModel(1000)
		checkSegment(t, s, m) // empty: everything is out of range
		fill(t, s, m, 60)
		checkSegment(t, s, m)
		if s.FirstTime() != m.times[0] {
			t.Errorf("FirstTime = %d, want %d", s.FirstTime(), m.times[0])
		}
		if s.Base() != 1000 || s.Dir() != e.dir || s.Sealed() {
			t.Errorf("Base %d Dir %q Sealed %v", s.Base(), s.Dir(), s.Sealed())
		}
		if got := e.fileSize(t, LogName(1000)); got != m.size() {
			t.Errorf("log file is %d bytes, want %d", got, m.size())
		}
	})
}

// TestFindRanges checks Find's range for every offset against limits and
// byte budgets: whole batches, at least one, First/Next right.
func TestFindRanges(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 7, testOpts)
		defer s.Close()
		m := newModel(7)
		fill(t, s, m, 40)
		s.Acquire()
		defer s.Release()
		limits := []uint64{0, 1, 2, 3, 5, 17, 1000, ^uint64(0)}
		budgets := []int64{0, 1, 64, 100, 250, 1000, 1 << 20}
		for off := m.base; off < m.next(); off++ {
			for _, limit := range limits {
				for _, maxBytes := range budgets {
					r, err := s.Find(off, limit, maxBytes)
					if err != nil {
						t.Fatalf("Find(%d, %d, %d): %v", off, limit, maxBytes, err)
					}
					want := m.want(off, limit, maxBytes)
					if r != want {
						t.Fatalf("Find(%d, %d, %d) = %+v, want %+v", off, limit, maxBytes, r, want)
					}
					if r.First > off || r.Next <= off {
						t.Fatalf("Find(%d) = %+v does not hold the offset", off, r)
					}
					b := s.Bytes(r)
					if int64(len(b)) != r.Len() || !bytes.Equal(b, m.bytes(r)) {
						t.Fatalf("Bytes(%+v) differ", r)
					}
					checkWholeBatches(t, b, r)
				}
			}
		}
	})
}

// checkWholeBatches scans b as back-to-back batches covering r.
func checkWholeBatches(t testing.TB, b []byte, r Range) {
	t.Helper()
	sc := record.NewScanner(b)
	next, n := r.First, 0
	for sc.Next() {
		if h := sc.Header(); h.BaseOffset != next {
			t.Fatalf("batch at %d has offset %d, want %d", sc.Pos(), h.BaseOffset, next)
		}
		next = sc.Header().NextOffset()
		n++
	}
	if sc.Err() != nil || n == 0 || next != r.Next || sc.End() != len(b) {
		t.Fatalf("range %+v: %d batches, next %d, err %v", r, n, next, sc.Err())
	}
}

func TestFindTime(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 0, testOpts)
		defer s.Close()
		s.Acquire()
		defer s.Release()
		if _, ok, err := s.FindTime(0); ok || err != nil {
			t.Fatalf("FindTime on empty segment = %v, %v", ok, err)
		}
		m := newModel(0)
		fill(t, s, m, 25)
		for i, bt := range m.times {
			for _, q := range []int64{bt - 1, bt} {
				off, ok, err := s.FindTime(q)
				if err != nil || !ok || off != m.first[i] {
					t.Fatalf("FindTime(%d) = %d, %v, %v; want %d", q, off, ok, err, m.first[i])
				}
			}
		}
		if off, ok, _ := s.FindTime(m.times[0] - 1_000_000); !ok || off != 0 {
			t.Fatalf("FindTime(long ago) = %d, %v", off, ok)
		}
		if _, ok, _ := s.FindTime(m.times[len(m.times)-1] + 1); ok {
			t.Fatal("FindTime(after the last batch) found a batch")
		}
	})
}

// TestUncommittedInvisible: written but uncommitted batches are not
// visible; Rollback cuts them off the log and the offsets are reusable.
func TestUncommittedInvisible(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 0, testOpts)
		defer s.Close()
		m := newModel(0)
		fill(t, s, m, 5)
		pending := mkBatch(t, m.next(), 3, 40, 9_000_000)
		if err := s.Write([][]byte{pending}); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		// Not committed: readers see the old state only.
		checkSegment(t, s, m)
		s.Acquire()
		r, err := s.Find(0, ^uint64(0), 1<<30)
		s.Release()
		if err != nil || r.End != m.size() || r.Next != m.next() {
			t.Fatalf("Find over everything = %+v, %v; want end %d", r, err, m.size())
		}
		if got := e.fileSize(t, LogName(0)); got != m.size()+int64(len(pending)) {
			t.Fatalf("log is %d bytes before rollback", got)
		}
		if err := s.Rollback(); err != nil {
			t.Fatal(err)
		}
		if got := e.fileSize(t, LogName(0)); got != m.size() {
			t.Fatalf("log is %d bytes after rollback, want %d", got, m.size())
		}
		checkSegment(t, s, m)
		// The same offsets can be written again, with other bytes.
		fill(t, s, m, 4)
		checkSegment(t, s, m)
	})
}

// TestRollbackAfterWriteError fails the log write (an active segment's
// index is in memory); the caller rolls back and the next writes succeed.
func TestRollbackAfterWriteError(t *testing.T) {
	for _, which := range []string{LogName(0)} {
		t.Run(which, func(t *testing.T) {
			e := memEnv(t)
			s := mustCreate(t, e, 0, testOpts)
			defer s.Close()
			m := newModel(0)
			fill(t, s, m, 6)
			boom := errors.New("injected")
			e.mem.SetFault(func(op vfs.Op, name string) error {
				if op == vfs.OpWrite && name == e.path(which) {
					return boom
				}
				return nil
			})
			err := s.Write([][]byte{mkBatch(t, m.next(), 2, 50, 1), mkBatch(t, m.next()+2, 1, 50, 1)})
			if !errors.Is(err, boom) {
				t.Fatalf("Write = %v, want the injected error", err)
			}
			if err := s.Rollback(); err != nil {
				t.Fatal(err)
			}
			e.mem.SetFault(nil)
			if got := e.fileSize(t, LogName(0)); got != m.size() {
				t.Fatalf("log is %d bytes after rollback, want %d", got, m.size())
			}
			checkSegment(t, s, m)
			fill(t, s, m, 5)
			checkSegment(t, s, m)
			reopenAndCheck(t, e, s, m)
		})
	}
}

// reopenAndCheck closes s and checks both a clean and a scanning reopen.
func reopenAndCheck(t *testing.T, e *fsEnv, s *Segment, m *model) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, clean := range []bool{true, false} {
		s2, rep := mustOpen(t, e, m.base, testOpts, clean, true)
		if rep.TornBytes != 0 || rep.Scanned == clean {
			t.Errorf("clean=%v: report %+v", clean, rep)
		}
		checkSegment(t, s2, m)
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteChecks(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, Options{MaxBytes: 4096, MaxEntries: 8})
	defer s.Close()
	m := newModel(0)
	if err := s.Write(nil); err != nil {
		t.Fatalf("Write(nil) = %v", err)
	}
	b := mkBatch(t, 0, 1, 10, 1)
	for name, bad := range map[string][]byte{
		"short":          b[:40],
		"cut payload":    b[:len(b)-8],
		"trailing bytes": append(append([]byte(nil), b...), make([]byte, 8)...),
	} {
		if err := s.Write([][]byte{bad}); err == nil {
			t.Errorf("Write(%s batch) succeeded", name)
		}
		s.Rollback()
	}
	if err := s.Write([][]byte{mkBatch(t, 5, 1, 10, 1)}); err == nil {
		t.Error("Write of a batch with the wrong offset succeeded")
	}
	s.Rollback()
	// Eight entries fit, the ninth does not; Fits says so first.
	for i := 0; i < 8; i++ {
		if !s.Fits(100, 1) {
			t.Fatalf("Fits false with %d entries", i)
		}
		appendBatches(t, s, m, mkBatch(t, m.next(), 1, 10, int64(i)))
	}
	if s.Fits(1, 1) {
		t.Fatal("Fits true with MaxEntries entries")
	}
	if err := s.Write([][]byte{mkBatch(t, m.next(), 1, 10, 9)}); !errors.Is(err, ErrFull) {
		t.Fatalf("Write past MaxEntries = %v, want ErrFull", err)
	}
	s.Rollback()
	checkSegment(t, s, m)

	// MaxBytes: a batch larger than the segment is refused even when the
	// segment is empty (its mapping covers MaxBytes only).
	s2 := mustCreate(t, e, 100, Options{MaxBytes: 4096, MaxEntries: 8})
	defer s2.Close()
	big := mkBatch(t, 100, 1, 5000, 1)
	if s2.Fits(len(big), 1) {
		t.Fatal("Fits true for a batch larger than MaxBytes")
	}
	if err := s2.Write([][]byte{big}); !errors.Is(err, ErrFull) {
		t.Fatalf("Write of an oversized batch = %v, want ErrFull", err)
	}
	s2.Rollback()
	m2 := newModel(100)
	two := [][]byte{mkBatch(t, 100, 1, 2000, 1), mkBatch(t, 101, 1, 2000, 1)}
	if s2.Fits(len(two[0])+len(two[1]), 2) {
		t.Fatal("Fits true for two batches larger than MaxBytes together")
	}
	if err := s2.Write(two); !errors.Is(err, ErrFull) {
		t.Fatalf("Write past MaxBytes = %v, want ErrFull", err)
	}
	s2.Rollback()
	appendBatches(t, s2, m2, two[0])
	checkSegment(t, s2, m2)
}

// TestAllocs: the steady-state write path and the read path allocate
// nothing on the real file system.
func TestAllocs(t *testing.T) {
	e := osEnv(t)
	s := mustCreate(t, e, 0, Options{MaxBytes: 8 << 20, MaxEntries: 4096})
	defer s.Close()
	b1, b2 := mkBatch(t, 0, 10, 100, 1), mkBatch(t, 10, 10, 100, 1)
	bufs := [][]byte{b1, b2}
	next := uint64(0)
	writeCommit := func() {
		record.Stamp(b1, next, 5)
		record.Stamp(b2, next+10, 5)
		if err := s.Write(bufs); err != nil {
			t.Fatal(err)
		}
		s.Commit()
		next += 20
	}
	writeCommit() // first write sizes the reusable buffers
	if a := testing.AllocsPerRun(200, writeCommit); a != 0 {
		t.Errorf("Write+Commit: %v allocs per call, want 0", a)
	}
	syncCommit := func() {
		writeCommit()
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if a := testing.AllocsPerRun(20, syncCommit); a != 0 {
		t.Errorf("Write+Sync+Commit: %v allocs per call, want 0", a)
	}
	s.Acquire()
	defer s.Release()
	off := uint64(0)
	var n int
	find := func() {
		r, err := s.Find(off, 50, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		n += len(s.Bytes(r))
		off = (off + 37) % next
	}
	if a := testing.AllocsPerRun(500, find); a != 0 {
		t.Errorf("Find+Bytes: %v allocs per call, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { s.FindTime(5) }); a != 0 {
		t.Errorf("FindTime: %v allocs per call, want 0", a)
	}
}
