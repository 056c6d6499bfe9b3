package segment

import (
	"errors"
	"testing"

	"github.com/haraqa/haraqa/record"
)

// lastSegment writes n batches to an unsealed segment, syncs it and its
// directory, and closes it without a clean marker (the index is synced by
// Close, which a crash would not do; Open is called with clean=false).
func lastSegment(t *testing.T, e *fsEnv, n int) *model {
	t.Helper()
	s := mustCreate(t, e, 0, testOpts)
	m := newModel(0)
	fill(t, s, m, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return m
}

// snapshot returns a function that restores the log and index of segment 0
// to their current bytes.
func snapshot(t *testing.T, e *fsEnv) func() {
	t.Helper()
	log, idx := e.readFile(t, LogName(0)), e.readFile(t, IndexName(0))
	return func() {
		e.mutate(t, LogName(0), func([]byte) []byte { return append([]byte(nil), log...) })
		e.mutate(t, IndexName(0), func([]byte) []byte { return append([]byte(nil), idx...) })
	}
}

// expectTorn opens the damaged last segment and checks it recovered to
// want, cut torn bytes off, and takes new appends at the right place.
func expectTorn(t *testing.T, e *fsEnv, clean bool, want *model, torn int64) {
	t.Helper()
	expectTornOpts(t, e, testOpts, clean, want, torn)
}

// expectTornOpts is expectTorn with the given options (say Options.Synced).
func expectTornOpts(t *testing.T, e *fsEnv, opts Options, clean bool, want *model, torn int64) {
	t.Helper()
	expectCut(t, e, opts, clean, want, torn, 0)
}

// expectCut is expectTornOpts for a tail of torn bytes or of zeros (cut
// alike, reported apart).
func expectCut(t *testing.T, e *fsEnv, opts Options, clean bool, want *model, torn, zeros int64) {
	t.Helper()
	s, rep := mustOpen(t, e, 0, opts, clean, true)
	defer s.Close()
	if rep.TornBytes != torn || rep.ZeroBytes != zeros || !rep.Scanned || !rep.IndexRebuilt {
		t.Fatalf("report %+v, want %d torn bytes and %d zero bytes", rep, torn, zeros)
	}
	if got := e.fileSize(t, LogName(0)); got != want.size() {
		t.Fatalf("log is %d bytes after recovery, want %d", got, want.size())
	}
	checkSegment(t, s, want)
	m := want.truncated(len(want.batches))
	b := mkBatch(t, m.next(), 2, 33, 42)
	appendBatches(t, s, m, b)
	checkSegment(t, s, m)
	if m.pos[len(m.pos)-1] != want.size() {
		t.Fatalf("new batch at %d, want %d", m.pos[len(m.pos)-1], want.size())
	}
}

// TestTornTail cuts the last segment's log at every byte of its last
// batch: recovery keeps exactly the whole batches before it.
func TestTornTail(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		m := lastSegment(t, e, 6)
		restore := snapshot(t, e)
		prev := m.truncated(5)
		start, end := m.pos[5], m.size()
		step := int64(1)
		if e.mem == nil && testing.Short() {
			step = 7
		}
		for cut := start; cut < end; cut += step {
			e.mutate(t, LogName(0), func(b []byte) []byte { return b[:cut] })
			expectTorn(t, e, cut%2 == 0, prev, cut-start)
			restore()
		}
		// Untouched: nothing torn, nothing lost.
		expectTorn(t, e, false, m, 0)
	})
}

// TestTornZeroes: zero-filled bytes after or over the end of the last
// batch (sectors allocated but never written, or zeros written ahead) are
// cut like a torn tail; a tail of zeros alone is reported as zeros.
func TestTornZeroes(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		m := lastSegment(t, e, 6)
		restore := snapshot(t, e)
		for _, n := range []int{1, 7, 8, 63, 64, 100, 4096} {
			e.mutate(t, LogName(0), func(b []byte) []byte { return append(b, make([]byte, n)...) })
			expectCut(t, e, testOpts, false, m, 0, int64(n))
			restore()
		}
		// The last batch's final bytes zeroed, and 4096 zero bytes after.
		zeroFrom := func(from int64) func([]byte) []byte {
			return func(b []byte) []byte {
				clear(b[from:])
				return append(b, make([]byte, 4096)...)
			}
		}
		for _, from := range []int64{m.pos[5], m.pos[5] + 8, m.pos[5] + 64, m.size() - 8} {
			e.mutate(t, LogName(0), zeroFrom(from))
			cut := m.size() - m.pos[5] + 4096
			if from == m.pos[5] { // the whole batch zeroed: a tail of zeros alone
				expectCut(t, e, testOpts, false, m.truncated(5), 0, cut)
			} else {
				expectTorn(t, e, false, m.truncated(5), cut)
			}
			restore()
		}
	})
}

// TestTornWholeSegment: a last segment whose only batch is torn recovers
// empty, at its base offset.
func TestTornWholeSegment(t *testing.T) {
	e := memEnv(t)
	m := lastSegment(t, e, 1)
	e.mutate(t, LogName(0), func(b []byte) []byte { return b[:len(b)-1] })
	expectTorn(t, e, false, m.truncated(0), m.size()-1)
}

// TestCorruptionNotTorn: damage below the synced offset followed by a valid
// batch is corruption, in the last segment or not (past the synced offset
// the last segment's tail is torn: TestTornHoleBeforeValidPages): Open reports where, keeps every byte of the
// file, serves every batch but the damaged one (whose read fails its
// checksum, so the engine can name its offsets and fetch it from a mirror)
// and refuses writes.
func TestCorruptionNotTorn(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		m := lastSegment(t, e, 6)
		restore := snapshot(t, e)
		damages := []struct {
			name string
			at   int64 // byte flipped
			bad  int   // batch damaged
		}{
			{"payload of batch 2", m.pos[2] + 64 + 3, 2},
			{"header of batch 3", m.pos[3] + 20, 3},
			{"magic of batch 1", m.pos[1], 1},
			{"first batch", 5, 0},
			{"last byte of batch 4", m.pos[5] - 1, 4},
		}
		for _, d := range damages {
			for _, last := range []bool{true, false} {
				e.mutate(t, LogName(0), flip(d.at, 0))
				opts := testOpts
				opts.Synced = m.next()
				s, rep, err := Open(e.fs, e.dir, 0, opts, false, last)
				ce := asCorrupt(t, err)
				if ce.Pos != m.pos[d.bad] || ce.Offset != m.first[d.bad] {
					t.Errorf("%s (last=%v): Pos %d Offset %d; want %d, %d", d.name, last, ce.Pos, ce.Offset, m.pos[d.bad], m.first[d.bad])
				}
				if rep.TornBytes != 0 || rep.Resealed {
					t.Errorf("%s (last=%v): report %+v", d.name, last, rep)
				}
				if got := e.fileSize(t, LogName(0)); got != m.size() {
					t.Fatalf("%s (last=%v): log cut to %d bytes, want %d", d.name, last, got, m.size())
				}
				if s == nil {
					t.Fatalf("%s: no segment returned", d.name)
				}
				checkAroundDamage(t, s, m, d.bad)
				if s.Sealed() || e.fileSize(t, SealName(0)) >= 0 {
					t.Errorf("%s: a damaged segment was sealed", d.name)
				}
				// Writing would overwrite the valid batches after the
				// damage, and a rollback would cut them: both refused.
				if err := s.Write([][]byte{mkBatch(t, m.first[d.bad], 1, 10, 1)}); err == nil {
					t.Errorf("%s: Write to a damaged segment succeeded", d.name)
				}
				s.Rollback()
				if err := s.Seal(); err == nil {
					t.Errorf("%s: Seal of a damaged segment succeeded", d.name)
				}
				s.Close()
				if got := e.fileSize(t, LogName(0)); got != m.size() {
					t.Fatalf("%s: log cut to %d bytes after write/rollback/close, want %d", d.name, got, m.size())
				}
				restore()
			}
		}
		expectTorn(t, e, false, m, 0)
	})
}

// TestLastBatchDamaged: a flipped bit in the last batch of the last
// segment, with nothing valid after it, cannot be told from a torn write
// and is cut (the documented rule); in an older segment it is corruption.
func TestLastBatchDamaged(t *testing.T) {
	e := memEnv(t)
	m := lastSegment(t, e, 4)
	restore := snapshot(t, e)
	e.mutate(t, LogName(0), flip(m.pos[3]+70, 1))
	_, _, err := Open(e.fs, e.dir, 0, testOpts, false, false)
	if ce := asCorrupt(t, err); ce.Pos != m.pos[3] {
		t.Errorf("Pos %d, want %d", ce.Pos, m.pos[3])
	}
	expectTorn(t, e, false, m.truncated(3), m.size()-m.pos[3])
	restore()
}

// TestWrongOffsetIsCorruption: a whole, valid batch whose offset does not
// continue the log is not a torn write, even at the tail: it is kept and
// reported.
func TestWrongOffsetIsCorruption(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		m := lastSegment(t, e, 3)
		stray := mkBatch(t, m.next()+5, 1, 20, 9)
		e.mutate(t, LogName(0), func(b []byte) []byte { return append(b, stray...) })
		s, rep, err := Open(e.fs, e.dir, 0, testOpts, false, true)
		ce := asCorrupt(t, err)
		if ce.Pos != m.size() || ce.Offset != m.next() || rep.TornBytes != 0 {
			t.Errorf("error %+v, report %+v", ce, rep)
		}
		if got := e.fileSize(t, LogName(0)); got != m.size()+int64(len(stray)) {
			t.Errorf("log cut to %d bytes", got)
		}
		checkSegment(t, s, m)
		s.Close()
	})
}

// checkAroundDamage reads every batch of m from s: all but batch bad come
// back whole and valid, batch bad's range fails verification with
// ErrCorrupt, and the segment's next offset is m's.
func checkAroundDamage(t *testing.T, s *Segment, m *model, bad int) {
	t.Helper()
	if s.Next() != m.next() {
		t.Fatalf("Next = %d, want %d: offsets after the damage are not indexed", s.Next(), m.next())
	}
	if !s.Acquire() {
		t.Fatal("Acquire failed")
	}
	defer s.Release()
	for i := range m.batches {
		r, err := s.Find(m.first[i], 1, 1)
		if err != nil {
			t.Fatalf("Find(%d): %v", m.first[i], err)
		}
		if r.Pos != m.pos[i] || r.First != m.first[i] {
			t.Fatalf("batch %d: range %+v, want pos %d first %d", i, r, m.pos[i], m.first[i])
		}
		_, verr := record.Verify(s.Bytes(r))
		if i == bad {
			if !errors.Is(verr, ErrCorrupt) {
				t.Fatalf("damaged batch %d verifies: %v", i, verr)
			}
			continue
		}
		if verr != nil || string(s.Bytes(r)) != string(m.batches[i]) {
			t.Fatalf("batch %d after damage: %v", i, verr)
		}
	}
}

// TestTornTailBelowSyncedIsCorruption: damage in the last batch looks
// like a torn write, but when the caller knows that batch was synced
// (Options.Synced past it) it is corruption: nothing is cut.
func TestTornTailBelowSyncedIsCorruption(t *testing.T) {
	e := memEnv(t)
	m := lastSegment(t, e, 4)
	e.mutate(t, LogName(0), flip(m.pos[3]+64+2, 0))
	opts := testOpts
	opts.Synced = m.next()
	s, rep, err := Open(e.fs, e.dir, 0, opts, false, true)
	if !errors.Is(err, ErrCorrupt) || rep.TornBytes != 0 {
		t.Fatalf("Open = %v, report %+v; want corruption and no cut", err, rep)
	}
	if got := e.fileSize(t, LogName(0)); got != m.size() {
		t.Fatalf("log cut to %d bytes, want %d", got, m.size())
	}
	if s != nil {
		s.Close()
	}
	// Without the synced offset the same damage is a torn tail (the
	// documented limit of a log without a checkpoint).
	s, rep, err = Open(e.fs, e.dir, 0, testOpts, false, true)
	if err != nil || rep.TornBytes == 0 {
		t.Fatalf("Open without Synced = %v, report %+v; want a torn-tail cut", err, rep)
	}
	s.Close()
}
