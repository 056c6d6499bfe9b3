package segment

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// failOn returns a MemFS fault func failing op on file name with err.
func failOn(op vfs.Op, name string, err error) func(vfs.Op, string) error {
	return func(o vfs.Op, n string) error {
		if o == op && n == name {
			return err
		}
		return nil
	}
}

// TestFaults: a failing write or sync is returned to the caller, which
// rolls back; nothing partial is readable, before or after a reopen, and
// writes resume once the fault clears.
func TestFaults(t *testing.T) {
	boom := errors.New("EIO (injected)")
	cases := []struct {
		name  string
		fault func(e *fsEnv) func(vfs.Op, string) error
		op    vfs.Op // the call that must fail
	}{
		{"log write", func(e *fsEnv) func(vfs.Op, string) error { return failOn(vfs.OpWrite, e.path(LogName(0)), boom) }, vfs.OpWrite},
		{"log sync", func(e *fsEnv) func(vfs.Op, string) error { return failOn(vfs.OpSync, e.path(LogName(0)), boom) }, vfs.OpSync},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := memEnv(t)
			s := mustCreate(t, e, 0, testOpts)
			m := newModel(0)
			fill(t, s, m, 4)
			e.mem.SetFault(tc.fault(e))
			b := mkBatch(t, m.next(), 3, 100, 77)
			err := s.Write([][]byte{b})
			if tc.op == vfs.OpSync {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
				err = s.Sync()
			}
			if !errors.Is(err, boom) {
				t.Fatalf("%s = %v, want the injected error", tc.op, err)
			}
			if err := s.Rollback(); err != nil {
				t.Fatalf("Rollback: %v", err)
			}
			checkSegment(t, s, m)
			if got := e.fileSize(t, LogName(0)); got != m.size() {
				t.Fatalf("log is %d bytes after rollback, want %d", got, m.size())
			}
			e.mem.SetFault(nil)
			fill(t, s, m, 3)
			checkSegment(t, s, m)
			reopenAndCheck(t, e, s, m)
		})
	}
}

// TestRollbackFails: a failing truncate is reported, so the engine can
// make the failure sticky, and the segment refuses to seal a log longer
// than what was committed.
func TestRollbackFails(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, testOpts)
	defer s.Close()
	m := newModel(0)
	fill(t, s, m, 3)
	if err := s.Write([][]byte{mkBatch(t, m.next(), 1, 10, 5)}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("injected")
	e.mem.SetFault(failOn(vfs.OpTrunc, e.path(LogName(0)), boom))
	if err := s.Rollback(); !errors.Is(err, boom) {
		t.Fatalf("Rollback = %v, want the injected error", err)
	}
	e.mem.SetFault(nil)
	checkSegment(t, s, m)
	if err := s.Seal(); err == nil {
		t.Fatal("Seal succeeded over uncommitted log bytes")
	}
	if s.Sealed() {
		t.Fatal("segment sealed")
	}
}

// TestSealRefusesUncommitted: Seal with written, uncommitted batches fails
// instead of sealing a length the file does not have.
func TestSealRefusesUncommitted(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, testOpts)
	defer s.Close()
	m := newModel(0)
	fill(t, s, m, 3)
	if err := s.Write([][]byte{mkBatch(t, m.next(), 1, 10, 5)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Seal(); err == nil {
		t.Fatal("Seal succeeded with an uncommitted write")
	}
	if err := s.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, rep := mustOpen(t, e, 0, testOpts, false, false)
	defer s2.Close()
	if rep.Scanned || !s2.Sealed() {
		t.Fatalf("report %+v, sealed %v", rep, s2.Sealed())
	}
	checkSegment(t, s2, m)
}

// TestDiskFull: a write that runs out of space writes part of a batch and
// fails with ENOSPC; after Rollback no partial batch is readable or left
// in the file, and writes resume when space frees.
func TestDiskFull(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, testOpts)
	m := newModel(0)
	fill(t, s, m, 5)
	// Room for the log to grow by 100 bytes: the next batch is cut. (The
	// index is in memory until the segment is sealed: its file is empty.)
	e.mem.SetCapacity(m.size() + 100)
	b := mkBatch(t, m.next(), 5, 60, 1)
	err := s.Write([][]byte{b})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write = %v, want ENOSPC", err)
	}
	if got := e.fileSize(t, LogName(0)); got != m.size()+100 {
		t.Fatalf("log is %d bytes after a short write, want %d", got, m.size()+100)
	}
	if err := s.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := e.fileSize(t, LogName(0)); got != m.size() {
		t.Fatalf("log is %d bytes after rollback, want %d", got, m.size())
	}
	checkSegment(t, s, m)
	// Still full: the same again.
	if err := s.Write([][]byte{b}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second Write = %v, want ENOSPC", err)
	}
	s.Rollback()
	// Capacity lowered below what is used: no room at all, still an error.
	e.mem.SetCapacity(10)
	if err := s.Write([][]byte{b}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write over capacity = %v, want ENOSPC", err)
	}
	s.Rollback()
	checkSegment(t, s, m)
	// A crash now keeps only synced bytes: the committed batches.
	c := e.mem.Crash()
	e.mem.SetCapacity(0)
	appendBatches(t, s, m, b)
	fill(t, s, m, 3)
	checkSegment(t, s, m)
	reopenAndCheck(t, e, s, m)

	ce := &fsEnv{name: "crash", fs: c, mem: c, dir: e.dir}
	s2, rep := mustOpen(t, ce, 0, testOpts, false, true)
	defer s2.Close()
	if rep.TornBytes != 0 {
		t.Errorf("report %+v", rep)
	}
	checkSegment(t, s2, m.truncated(5))
}

// TestCrash: after Crash, every batch that was written, synced and
// committed is recovered; unsynced ones vanish whole.
func TestCrash(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 50, testOpts)
	m := newModel(50)
	fill(t, s, m, 12)
	synced := m.truncated(len(m.batches))
	// Written and committed but not synced: may vanish.
	b := mkBatch(t, m.next(), 2, 30, 5)
	if err := s.Write([][]byte{b}); err != nil {
		t.Fatal(err)
	}
	s.Commit()
	for _, clean := range []bool{false, true} {
		c := e.mem.Crash()
		s2, rep, err := Open(c, e.dir, 50, testOpts, clean, true)
		if err != nil {
			t.Fatalf("clean=%v: Open: %v", clean, err)
		}
		if !rep.Scanned || !rep.IndexRebuilt {
			t.Errorf("clean=%v: report %+v; the unsynced index must be rebuilt", clean, rep)
		}
		checkSegment(t, s2, synced)
		s2.Close()
	}
	s.Close()
}

// TestCrashAfterSeal: a sealed segment survives a crash whole and opens
// without a scan.
func TestCrashAfterSeal(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, testOpts)
	m := newModel(0)
	fill(t, s, m, 9)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	c := e.mem.Crash()
	s2, rep, err := Open(c, e.dir, 0, testOpts, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned || !s2.Sealed() {
		t.Fatalf("report %+v, sealed %v", rep, s2.Sealed())
	}
	checkSegment(t, s2, m)
	s2.Close()
	s.Close()
}

// TestCrashRandom runs seeded random sequences of writes, syncs, commits,
// rollbacks and injected failures, crashes at a random point, and checks
// that recovery keeps every synced, committed batch, in order, and never a
// partial one: what it recovers is a byte-exact prefix of what was written.
func TestCrashRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	iters := 200
	if testing.Short() {
		iters = 20
	}
	for it := 0; it < iters; it++ {
		crashRound(t, rng, it)
	}
}

func crashRound(t *testing.T, rng *rand.Rand, it int) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, testOpts)
	defer s.Close()
	var written [][]byte // every batch written in order, committed or not
	committed := newModel(0)
	durable := 0 // committed batches known synced
	steps := rng.IntN(30)
	for step := 0; step < steps; step++ {
		k := 1 + rng.IntN(3)
		group := make([][]byte, k)
		next := committed.next()
		size := 0
		for j := range group {
			group[j] = mkBatch(t, next, 1+rng.IntN(4), rng.IntN(200), int64(step))
			next += uint64(record.CountOf(group[j]))
			size += len(group[j])
		}
		if !s.Fits(size, k) {
			break
		}
		var fault error
		if rng.IntN(8) == 0 {
			fault = errors.New("injected")
			op := []vfs.Op{vfs.OpWrite, vfs.OpSync}[rng.IntN(2)]
			e.mem.SetFault(failOn(op, e.path(LogName(0)), fault))
		}
		err := s.Write(group)
		doSync := rng.IntN(2) == 0
		if err == nil && doSync {
			err = s.Sync()
		}
		e.mem.SetFault(nil)
		if err != nil {
			if !errors.Is(err, fault) {
				t.Fatalf("round %d: unexpected error %v", it, err)
			}
			rerr := s.Rollback()
			if errors.Is(err, ErrSyncLost) {
				// Committed bytes were unsynced when the sync failed: the
				// failure is sticky, the segment takes nothing more.
				if !errors.Is(rerr, ErrSyncLost) || s.Sync() == nil || s.Seal() == nil {
					t.Fatalf("round %d: a failed sync with unsynced committed bytes is not sticky: %v", it, rerr)
				}
				break
			}
			if rerr != nil {
				t.Fatal(rerr)
			}
			continue
		}
		s.Commit()
		written = append(written, group...)
		for _, b := range group {
			committed.add(b)
		}
		if doSync {
			durable = len(committed.batches)
		}
	}
	c := e.mem.Crash()
	s2, rep, err := Open(c, e.dir, 0, testOpts, rng.IntN(2) == 0, true)
	if err != nil {
		t.Fatalf("round %d: Open after crash: %v (%+v)", it, err, rep)
	}
	defer s2.Close()
	got := int(s2.Entries())
	if got < durable || got > len(committed.batches) {
		t.Fatalf("round %d: recovered %d batches; %d durable, %d committed", it, got, durable, len(committed.batches))
	}
	checkSegment(t, s2, committed.truncated(got))
	if got > 0 {
		s2.Acquire()
		r, _ := s2.Find(0, ^uint64(0), 1<<30)
		if !bytes.Equal(s2.Bytes(r), committed.bytes(r)) {
			t.Fatalf("round %d: recovered bytes differ", it)
		}
		s2.Release()
	}
	// The recovered segment takes new writes at the right place.
	m := committed.truncated(got)
	fill(t, s2, m, 2)
	checkSegment(t, s2, m)
}

// TestCreateFailureLeavesNoFiles checks that a topic keeps rolling after
// a segment create failed (a mapping refused for lack of memory or of map
// slots, an index create or a directory sync failing): the failed create
// leaves no files and no descriptors behind, and the next create of the
// same base succeeds.
func TestCreateFailureLeavesNoFiles(t *testing.T) {
	for _, tc := range []struct {
		op   vfs.Op
		file func(base uint64) string
	}{
		{vfs.OpMap, LogName}, {vfs.OpCreate, IndexName}, {vfs.OpSyncDir, func(uint64) string { return "" }},
	} {
		t.Run(string(tc.op)+" "+tc.file(7), func(t *testing.T) {
			e := memEnv(t)
			name := e.dir
			if f := tc.file(7); f != "" {
				name = e.path(f)
			}
			e.mem.SetFault(failOn(tc.op, name, syscall.ENOMEM))
			if _, err := Create(e.fs, e.dir, 7, testOpts); !errors.Is(err, syscall.ENOMEM) {
				t.Fatalf("Create under a %s fault = %v, want ENOMEM", tc.op, err)
			}
			e.mem.SetFault(nil)
			if names, _ := e.fs.List(e.dir); len(names) != 0 {
				t.Fatalf("a failed create left %v", names)
			}
			if files, maps := e.mem.OpenFiles(); files != 0 || maps != 0 {
				t.Fatalf("a failed create left %d files and %d mappings open", files, maps)
			}
			s := mustCreate(t, e, 7, testOpts)
			m := newModel(7)
			fill(t, s, m, 3)
			checkSegment(t, s, m)
			s.Close()
		})
	}
}

// TestCreateReplacesEmptyLeftover checks that empty files of a segment
// that was never written (left by a crash during a create, or a failed
// cleanup) do not block its creation, while a file that holds anything,
// or a sealed segment, is never replaced.
func TestCreateReplacesEmptyLeftover(t *testing.T) {
	e := memEnv(t)
	for _, name := range []string{LogName(5), IndexName(5), IndexName(9)} {
		f, err := e.fs.Create(e.path(name))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	for _, base := range []uint64{5, 9} { // empty log and index; index alone
		s := mustCreate(t, e, base, testOpts)
		m := newModel(base)
		fill(t, s, m, 1)
		checkSegment(t, s, m)
		s.Close()
	}
	// Segment 5 now holds a batch; segment 20 is sealed and empty.
	if _, err := Create(e.fs, e.dir, 5, testOpts); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create over a written segment = %v, want ErrExist", err)
	}
	s := mustCreate(t, e, 20, testOpts)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Create(e.fs, e.dir, 20, testOpts); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create over a sealed segment = %v, want ErrExist", err)
	}
	if _, err := e.fs.ReadFile(e.path(SealName(20))); err != nil {
		t.Fatalf("the sealed segment's seal is gone: %v", err)
	}
}

// TestSealFailureRetry: a seal that fails to write its sidecar leaves the
// segment unsealed and writable; a retry seals it.
func TestSealFailureRetry(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, testOpts)
	defer s.Close()
	m := newModel(0)
	fill(t, s, m, 5)
	boom := errors.New("injected")
	for _, op := range []vfs.Op{vfs.OpSync, vfs.OpRename} {
		e.mem.SetFault(func(o vfs.Op, name string) error {
			if o == op && (name == e.path(LogName(0)) || name == e.path(SealName(0))+".tmp") {
				return boom
			}
			return nil
		})
		if err := s.Seal(); !errors.Is(err, boom) {
			t.Fatalf("%s fault: Seal = %v", op, err)
		}
		e.mem.SetFault(nil)
		if s.Sealed() {
			t.Fatalf("%s fault: sealed after a failed Seal", op)
		}
		fill(t, s, m, 1)
	}
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	checkSegment(t, s, m)
	c := e.mem.Crash()
	s2, rep, err := Open(c, e.dir, 0, testOpts, false, false)
	if err != nil || rep.Scanned || !s2.Sealed() {
		t.Fatalf("Open after crash: %v, %+v", err, rep)
	}
	checkSegment(t, s2, m)
	s2.Close()
}
