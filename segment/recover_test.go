package segment

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// sealedSegment writes n batches to segment base, seals and closes it.
func sealedSegment(t *testing.T, e *fsEnv, base uint64, n int) *model {
	t.Helper()
	s := mustCreate(t, e, base, testOpts)
	m := newModel(base)
	fill(t, s, m, n)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	if !s.Sealed() || s.Fits(1, 1) {
		t.Fatal("sealed segment not sealed or still fits")
	}
	if err := s.Write([][]byte{mkBatch(t, m.next(), 1, 1, 1)}); !errors.Is(err, ErrSealed) {
		t.Fatalf("Write to a sealed segment = %v, want ErrSealed", err)
	}
	if err := s.Rollback(); err != nil {
		t.Fatal(err)
	}
	seal, ok := s.SealInfo()
	if !ok || seal.Base != base || seal.Next != m.next() || seal.LogSize != m.size() || seal.Entries != int64(n) ||
		seal.LastTime != m.times[n-1] {
		t.Fatalf("SealInfo = %+v, %v", seal, ok)
	}
	checkSegment(t, s, m)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSealReopen(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		m := sealedSegment(t, e, 100, 20)
		if got, err := ReadSeal(e.fs, e.dir, 100); err != nil || got.Next != m.next() {
			t.Fatalf("ReadSeal = %+v, %v", got, err)
		}
		for _, last := range []bool{false, true} {
			s, rep := mustOpen(t, e, 100, testOpts, false, last)
			if rep != (Report{}) {
				t.Errorf("report %+v; a sealed segment opens without a scan", rep)
			}
			if !s.Sealed() || s.loaded.Load() {
				t.Errorf("sealed %v, mapped %v; want sealed and mapped lazily", s.Sealed(), s.loaded.Load())
			}
			checkSegment(t, s, m)
			if !s.loaded.Load() {
				t.Error("not mapped after a read")
			}
			if s.File() == nil && e.mem == nil {
				t.Error("File() = nil on OSFS")
			}
			s.Close()
		}
	})
}

// TestSealedDamage: a flipped byte anywhere in a sealed log is found by
// Verify; a sealed log of the wrong length does not open.
func TestSealedDamage(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		m := sealedSegment(t, e, 0, 10)
		orig := e.readFile(t, LogName(0))
		for _, at := range []int64{0, 20, 63, 64, m.pos[4] + 70, m.size() - 1} {
			e.mutate(t, LogName(0), flip(at, 3))
			s, _ := mustOpen(t, e, 0, testOpts, false, false)
			s.Acquire()
			ce := asCorrupt(t, s.Verify())
			if !strings.HasSuffix(ce.File, LogName(0)) {
				t.Errorf("flip at %d: error names %s", at, ce.File)
			}
			s.Release()
			s.Close()
			e.mutate(t, LogName(0), flip(at, 3))
		}
		for _, cut := range []int64{m.size() - 1, m.pos[5], 0} {
			e.mutate(t, LogName(0), func(b []byte) []byte { return b[:cut] })
			s, _, err := Open(e.fs, e.dir, 0, testOpts, false, false)
			ce := asCorrupt(t, err)
			if s != nil || ce.Pos != cut {
				t.Errorf("cut to %d: segment %v, error %+v", cut, s, ce)
			}
			e.mutate(t, LogName(0), func([]byte) []byte { return append([]byte(nil), orig...) })
		}
		if got := e.fileSize(t, LogName(0)); got != m.size() {
			t.Fatalf("log is %d bytes, want %d (never cut)", got, m.size())
		}
		// And a longer sealed log is damage too.
		e.mutate(t, LogName(0), func(b []byte) []byte { return append(b, make([]byte, 8)...) })
		_, _, err := Open(e.fs, e.dir, 0, testOpts, false, true)
		asCorrupt(t, err)
	})
}

// TestSealedIndex: a sealed segment's index that is missing, garbage or
// of the wrong size is rebuilt; one with a damaged middle entry passes the
// cheap open check and is caught by Verify.
func TestSealedIndex(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		m := sealedSegment(t, e, 0, 12)
		idx := e.readFile(t, IndexName(0))
		damage := map[string]func(){
			"missing": func() {
				if err := e.fs.Remove(e.path(IndexName(0))); err != nil {
					t.Fatal(err)
				}
			},
			"garbage": func() {
				e.mutate(t, IndexName(0), func(b []byte) []byte {
					return randomBytes(b, 1)
				})
			},
			"short": func() { e.mutate(t, IndexName(0), func(b []byte) []byte { return b[:len(b)-EntrySize] }) },
		}
		for name, f := range damage {
			f()
			s, rep := mustOpen(t, e, 0, testOpts, false, false)
			if !rep.IndexRebuilt || !rep.Scanned {
				t.Errorf("%s: report %+v", name, rep)
			}
			checkSegment(t, s, m)
			s.Close()
			if got := e.readFile(t, IndexName(0)); !bytes.Equal(got, idx) {
				t.Errorf("%s: rebuilt index differs", name)
			}
		}
		// A middle entry pointing elsewhere: Verify names the index.
		e.mutate(t, IndexName(0), flip(5*EntrySize+4, 3))
		s, rep := mustOpen(t, e, 0, testOpts, false, false)
		defer s.Close()
		if rep.Scanned {
			t.Errorf("report %+v", rep)
		}
		s.Acquire()
		defer s.Release()
		ce := asCorrupt(t, s.Verify())
		if !strings.HasSuffix(ce.File, IndexName(0)) || ce.Pos != 5*EntrySize || ce.Offset != m.first[5] {
			t.Errorf("Verify: %+v", ce)
		}
	})
}

// TestSealedRebuildSmallerOptions: a sealed segment whose index must be
// rebuilt opens even when the options now allow less than it holds.
func TestSealedRebuildSmallerOptions(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		m := sealedSegment(t, e, 0, 200)
		e.fs.Remove(e.path(IndexName(0)))
		small := Options{MaxBytes: 4096, MaxEntries: 8}
		s, rep := mustOpen(t, e, 0, small, false, false)
		if !rep.IndexRebuilt {
			t.Errorf("report %+v", rep)
		}
		checkSegment(t, s, m)
		s.Close()
		if e.mem == nil {
			// The mapping the rebuild made is gone until the first read.
			e.fs.Remove(e.path(IndexName(0)))
			s3, rep := mustOpen(t, e, 0, small, false, false)
			defer s3.Close()
			if !rep.IndexRebuilt {
				t.Errorf("report %+v", rep)
			}
			maps, err := os.ReadFile("/proc/self/maps")
			if err == nil && bytes.Contains(maps, []byte(e.dir)) {
				t.Errorf("a mapping of %s outlives the rebuild of a lazily opened sealed segment", e.dir)
			}
		}
	})
}

// TestCleanReopen: with the clean flag a consistent index is trusted; a
// garbage, short or missing one is rebuilt from the log; without the flag
// the log is scanned.
func TestCleanReopen(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 10, testOpts)
		m := newModel(10)
		fill(t, s, m, 15)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		idx := e.readFile(t, IndexName(10))
		if len(idx) != 15*EntrySize {
			t.Fatalf("index is %d bytes after Close, want %d", len(idx), 15*EntrySize)
		}
		reopen := func(name string, clean, wantScan bool) {
			t.Helper()
			s, rep := mustOpen(t, e, 10, testOpts, clean, true)
			if rep.Scanned != wantScan || rep.IndexRebuilt != wantScan || rep.TornBytes != 0 || rep.Resealed {
				t.Errorf("%s: report %+v", name, rep)
			}
			if s.FirstTime() != m.times[0] {
				t.Errorf("%s: FirstTime %d, want %d", name, s.FirstTime(), m.times[0])
			}
			checkSegment(t, s, m)
			fill(t, s, m, 2) // appends continue at the right offset
			checkSegment(t, s, m)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		reopen("clean", true, false)
		reopen("scan", false, true)
		e.mutate(t, IndexName(10), func(b []byte) []byte {
			return randomBytes(b, 3)
		})
		reopen("garbage index", true, true)
		e.mutate(t, IndexName(10), func(b []byte) []byte { return append(b, 1, 2, 3) })
		reopen("ragged index", true, true)
		e.mutate(t, IndexName(10), func(b []byte) []byte { return b[:len(b)-EntrySize] })
		reopen("short index", true, true)
		e.fs.Remove(e.path(IndexName(10)))
		reopen("missing index", true, true)
		e.mutate(t, IndexName(10), func(b []byte) []byte { return b[:0] })
		reopen("empty index", true, true)
		// An index consistent with a log that has grown past it (a crash
		// after writes): the scan finds the extra batch.
		extra := mkBatch(t, m.next(), 2, 10, m.times[len(m.times)-1]+1)
		e.mutate(t, LogName(10), func(b []byte) []byte { return append(b, extra...) })
		m.add(extra)
		reopen("log past index", true, true)
	})
}

// TestOpenMoreEntriesThanOptions: an unsealed segment with more batches
// than MaxEntries now allows reopens, clean or scanned, and reads all.
func TestOpenMoreEntriesThanOptions(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 0, testOpts)
		m := newModel(0)
		fill(t, s, m, 40)
		s.Close()
		small := Options{MaxBytes: 1024, MaxEntries: 4}
		for _, clean := range []bool{true, false} {
			s, _ := mustOpen(t, e, 0, small, clean, true)
			checkSegment(t, s, m)
			if s.Fits(1, 1) {
				t.Error("Fits true past MaxEntries")
			}
			s.Close()
		}
	})
}

// TestEmptySegmentReopen: a segment with no batches reopens either way.
func TestEmptySegmentReopen(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 5, testOpts)
		s.Close()
		for _, clean := range []bool{true, false} {
			s, rep := mustOpen(t, e, 5, testOpts, clean, true)
			if rep.TornBytes != 0 {
				t.Errorf("report %+v", rep)
			}
			m := newModel(5)
			checkSegment(t, s, m)
			fill(t, s, m, 1)
			checkSegment(t, s, m)
			if err := s.Rollback(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			e.mutate(t, LogName(5), func(b []byte) []byte { return b[:0] })
			e.mutate(t, IndexName(5), func(b []byte) []byte { return b[:0] })
		}
	})
}

// TestOpenErrors: a missing log or an unreadable index is an error, not
// a segment.
func TestOpenErrors(t *testing.T) {
	e := memEnv(t)
	if _, _, err := Open(e.fs, e.dir, 0, testOpts, false, true); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing segment = %v", err)
	}
	s := mustCreate(t, e, 0, testOpts)
	fill(t, s, newModel(0), 3)
	s.Close()
	if _, err := Create(e.fs, e.dir, 0, testOpts); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create over an existing segment = %v", err)
	}
	boom := errors.New("injected")
	e.mem.SetFault(failOn(vfs.OpOpen, e.path(IndexName(0)), boom))
	if _, _, err := Open(e.fs, e.dir, 0, testOpts, true, true); !errors.Is(err, boom) {
		t.Fatalf("Open with a failing index open = %v", err)
	}
	e.mem.SetFault(nil)
	// A failed Create leaves nothing behind, so it can be retried.
	e.mem.SetFault(failOn(vfs.OpCreate, e.path(IndexName(9)), boom))
	if _, err := Create(e.fs, e.dir, 9, testOpts); !errors.Is(err, boom) {
		t.Fatalf("Create = %v", err)
	}
	e.mem.SetFault(nil)
	s9 := mustCreate(t, e, 9, testOpts)
	s9.Close()
}

// TestUnsealedNonLastResealed: an unsealed segment that is not the last
// one (its seal was lost) is scanned and sealed again.
func TestUnsealedNonLastResealed(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		m := sealedSegment(t, e, 0, 8)
		e.fs.Remove(e.path(SealName(0)))
		s, rep := mustOpen(t, e, 0, testOpts, false, false)
		if !rep.Resealed || !rep.Scanned || !s.Sealed() {
			t.Errorf("report %+v, sealed %v", rep, s.Sealed())
		}
		checkSegment(t, s, m)
		s.Close()
		// A garbage seal is as good as none.
		e.mutate(t, SealName(0), func(b []byte) []byte { b[10] ^= 1; return b })
		s, rep = mustOpen(t, e, 0, testOpts, false, false)
		if !rep.Resealed {
			t.Errorf("report %+v", rep)
		}
		checkSegment(t, s, m)
		s.Close()
		s, rep = mustOpen(t, e, 0, testOpts, false, false)
		if rep.Scanned {
			t.Errorf("report %+v after reseal", rep)
		}
		s.Close()
	})
}

// randomBytes fills b with seeded random bytes and returns it.
func randomBytes(b []byte, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestSealedCutBeforeMapping: a sealed log or index cut after Open but
// before the lazy mapping is reported as corruption on the first read,
// not touched past its end (SIGBUS on a real mapping).
func TestSealedCutBeforeMapping(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		sealedSegment(t, e, 0, 300)
		for _, name := range []string{LogName(0), IndexName(0)} {
			s, _ := mustOpen(t, e, 0, testOpts, false, false)
			restore := e.readFile(t, name)
			e.mutate(t, name, func(b []byte) []byte { return b[:len(b)/2] })
			s.Acquire()
			_, err := s.Find(0, 1, 0)
			if ce := asCorrupt(t, err); !strings.HasSuffix(ce.File, name) {
				t.Errorf("error names %s, want %s", ce.File, name)
			}
			s.Release()
			s.Close()
			e.mutate(t, name, func([]byte) []byte { return restore })
		}
	})
}
