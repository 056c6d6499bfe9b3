package segment

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// zaOpts are testOpts with zeros written ahead, as the engine sets them
// under fsync=always.
var zaOpts = Options{MaxBytes: 64 << 10, MaxEntries: 1024, ZeroAhead: 16 << 10, SyncedWrites: true}

// TestZeroAheadSmallWritesOverwrite: under ZeroAhead a small write that
// passes the file's end carries ZeroAhead zeros, and the small writes after
// it land on those zeros without growing the file (so that their fdatasync
// commits no new file size); the log reads exactly as written.
func TestZeroAheadSmallWritesOverwrite(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 0, zaOpts)
		defer s.Close()
		m := newModel(0)
		appendBatches(t, s, m, mkBatch(t, 0, 1, 20, 1))
		want := m.size() + zaOpts.ZeroAhead
		if got := e.fileSize(t, LogName(0)); got != want {
			t.Fatalf("log file is %d bytes after the first small write, want %d (its batch and the zeros ahead)", got, want)
		}
		for i := range 20 {
			appendBatches(t, s, m, mkBatch(t, m.next(), 2, 30, int64(2+i)))
		}
		if got := e.fileSize(t, LogName(0)); got != want {
			t.Fatalf("log file is %d bytes after writes within the zeros, want %d unchanged", got, want)
		}
		checkSegment(t, s, m)
		// Past the zeros, the next small write carries zeros again, up to
		// the segment's capacity at most.
		for m.size() < want {
			appendBatches(t, s, m, mkBatch(t, m.next(), 1, 1000, 50))
		}
		if got, max := e.fileSize(t, LogName(0)), zaOpts.MaxBytes; got != min(m.size()+zaOpts.ZeroAhead, max) {
			t.Fatalf("log file is %d bytes with %d written, want %d", got, m.size(), min(m.size()+zaOpts.ZeroAhead, max))
		}
		checkSegment(t, s, m)
	})
}

// TestZeroAheadLargeWriteCarriesNone: a write larger than zeroAheadWrite
// grows the file by itself alone.
func TestZeroAheadLargeWriteCarriesNone(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 0, zaOpts)
		defer s.Close()
		m := newModel(0)
		big := mkBatch(t, 0, 1, zeroAheadWrite+1, 1)
		appendBatches(t, s, m, big)
		if got := e.fileSize(t, LogName(0)); got != m.size() {
			t.Fatalf("log file is %d bytes after one large write, want %d (no zeros)", got, m.size())
		}
	})
}

// TestZeroAheadCrash: an acknowledged (synced) message is never lost when
// the process dies with zeros written after the log: the next Open reads
// the zeros as the log's end, keeps every synced batch, cuts the zeros
// (reported as zeros, not as a torn write, and not as corruption) and
// appends where the log ended.
func TestZeroAheadCrash(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, zaOpts)
	m := newModel(0)
	fill(t, s, m, 12)
	zeros := e.fileSize(t, LogName(0)) - m.size()
	if zeros <= 0 {
		t.Fatal("no zeros were written ahead: the test would prove nothing")
	}
	crashed := e.mem.Crash() // the process dies: no Close
	s.Close()
	ce := &fsEnv{name: "crashed", fs: crashed, mem: crashed, dir: e.dir}
	opts := zaOpts
	opts.Synced = m.next()
	r, rep := mustOpen(t, ce, 0, opts, false, true)
	defer r.Close()
	if rep.TornBytes != 0 || rep.ZeroBytes != zeros {
		t.Fatalf("report %+v: want the zeros cut as zeros, nothing torn", rep)
	}
	if got := ce.fileSize(t, LogName(0)); got != m.size() {
		t.Fatalf("log is %d bytes after the reopen, want %d", got, m.size())
	}
	checkSegment(t, r, m)
	appendBatches(t, r, m, mkBatch(t, m.next(), 3, 40, 99))
	checkSegment(t, r, m)
}

// TestZeroAheadSealAndClose: Seal and Close cut the zeros, so that a sealed
// log's length is its seal's and a clean restart trusts the index without a
// scan.
func TestZeroAheadSealAndClose(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 0, zaOpts)
		m := newModel(0)
		fill(t, s, m, 9)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if got := e.fileSize(t, LogName(0)); got != m.size() {
			t.Fatalf("log is %d bytes after Close, want %d", got, m.size())
		}
		r, rep := mustOpen(t, e, 0, zaOpts, true, true)
		if rep.Scanned || rep.ZeroBytes != 0 || rep.TornBytes != 0 {
			t.Fatalf("clean reopen: report %+v, want the index trusted without a scan", rep)
		}
		appendBatches(t, r, m, mkBatch(t, m.next(), 1, 20, 7))
		if e.fileSize(t, LogName(0)) <= m.size() {
			t.Fatal("no zeros ahead after the reopen")
		}
		if err := r.Seal(); err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if got := e.fileSize(t, LogName(0)); got != m.size() {
			t.Fatalf("sealed log is %d bytes, want %d", got, m.size())
		}
		r.Close()
		sealed, _ := mustOpen(t, e, 0, zaOpts, false, true)
		defer sealed.Close()
		if !sealed.Sealed() {
			t.Fatal("not sealed after reopen")
		}
		checkSegment(t, sealed, m)
	})
}

// TestZeroAheadRollback: a write that is rolled back is cut together with
// its zeros, and the next small write carries zeros again.
func TestZeroAheadRollback(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 0, zaOpts)
		defer s.Close()
		m := newModel(0)
		appendBatches(t, s, m, mkBatch(t, 0, 1, 20, 1))
		// Large writes (no zeros of their own) past the zeros: the file
		// ends where the log does.
		for e.fileSize(t, LogName(0)) > m.size() {
			appendBatches(t, s, m, mkBatch(t, m.next(), 1, zeroAheadWrite+1000, 2))
		}
		// A small write past the file's end carries zeros; rolled back.
		if err := s.Write([][]byte{mkBatch(t, m.next(), 1, 20, 4)}); err != nil {
			t.Fatal(err)
		}
		if e.fileSize(t, LogName(0)) <= m.size()+zaOpts.ZeroAhead/2 {
			t.Fatal("the write did not carry zeros: the test would prove nothing")
		}
		if err := s.Rollback(); err != nil {
			t.Fatal(err)
		}
		if got := e.fileSize(t, LogName(0)); got != m.size() {
			t.Fatalf("log is %d bytes after Rollback, want %d", got, m.size())
		}
		appendBatches(t, s, m, mkBatch(t, m.next(), 1, 20, 5))
		if got := e.fileSize(t, LogName(0)); got != m.size()+zaOpts.ZeroAhead {
			t.Fatalf("log is %d bytes after the next write, want %d", got, m.size()+zaOpts.ZeroAhead)
		}
		checkSegment(t, s, m)
	})
}

// TestZeroAheadNearlyFullDisk: when the disk has room for the batches but
// not for the zeros, the write still succeeds (without them): zeros ahead
// never make a full disk refuse an append that fits.
func TestZeroAheadNearlyFullDisk(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, zaOpts)
	defer s.Close()
	m := newModel(0)
	appendBatches(t, s, m, mkBatch(t, 0, 1, 1000, 1))
	// Fill up to the zeros' end with large writes (no zeros of their own).
	for e.fileSize(t, LogName(0)) > m.size()+2000 {
		appendBatches(t, s, m, mkBatch(t, m.next(), 1, 1000, 2))
	}
	e.mem.SetCapacity(e.fileSize(t, LogName(0)) + e.fileSize(t, IndexName(0)) + 4096) // room for a batch, not for the zeros
	for range 4 {
		appendBatches(t, s, m, mkBatch(t, m.next(), 1, 20, 3))
	}
	checkSegment(t, s, m)
	e.mem.SetCapacity(0)
	if err := s.Seal(); err != nil {
		t.Fatalf("Seal after a write whose zeros failed: %v", err)
	}
	if got := e.fileSize(t, LogName(0)); got != m.size() {
		t.Fatalf("sealed log is %d bytes, want %d", got, m.size())
	}
}

// TestZeroAheadWriteErrorNotRetried: a write that fails with an I/O error
// (not a full disk) fails the append: the caller treats it as the volume
// failing, rolls back and fences it, never retries it and acknowledges
// (fsyncgate: after an I/O error the page cache may no longer hold what
// was written). Only a failure for lack of room (ENOSPC, EDQUOT) is
// retried without the zeros.
func TestZeroAheadWriteErrorNotRetried(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, zaOpts)
	defer s.Close()
	m := newModel(0)
	appendBatches(t, s, m, mkBatch(t, 0, 1, 1000, 1))
	// Fill up to the zeros' end with large writes (no zeros of their own).
	for e.fileSize(t, LogName(0)) > m.size() {
		appendBatches(t, s, m, mkBatch(t, m.next(), 1, zeroAheadWrite+1000, 2))
	}
	boom := fmt.Errorf("injected: %w", syscall.EIO)
	failed := 0
	e.mem.SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && name == e.path(LogName(0)) && failed == 0 {
			failed++ // once: a retry would succeed
			return boom
		}
		return nil
	})
	err := s.Write([][]byte{mkBatch(t, m.next(), 1, 20, 3)})
	e.mem.SetFault(nil)
	if failed != 1 {
		t.Fatal("the write carrying zeros was not attempted: the test would prove nothing")
	}
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("Write after an EIO on the log = %v, want the EIO (no retry)", err)
	}
	if err := s.Rollback(); err != nil {
		t.Fatal(err)
	}
	checkSegment(t, s, m)
	if got := e.fileSize(t, LogName(0)); got != m.size() {
		t.Fatalf("log is %d bytes after the rollback, want %d", got, m.size())
	}
}

// TestZeroAheadTornWriteCountsItsBytes: a write torn by a crash inside the
// zeros written ahead is cut with them, and the report (the engine's
// TornBytes and its log line) counts the torn write's bytes as torn and the
// zeros after them as zeros: a torn 100-byte write is not reported as a
// megabyte torn.
func TestZeroAheadTornWriteCountsItsBytes(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, zaOpts)
	m := newModel(0)
	fill(t, s, m, 5)
	fileEnd := e.fileSize(t, LogName(0))
	crashed := e.mem.Crash()
	s.Close()
	const torn = 100 // the first bytes of the next write made it to the disk
	next := mkBatch(t, m.next(), 2, 200, 9)
	if err := crashed.Corrupt(e.path(LogName(0)), func(b []byte) []byte {
		copy(b[m.size():], next[:torn])
		return b
	}); err != nil {
		t.Fatal(err)
	}
	ce := &fsEnv{name: "crashed", fs: crashed, mem: crashed, dir: e.dir}
	opts := zaOpts
	opts.Synced = m.next()
	r, rep := mustOpen(t, ce, 0, opts, false, true)
	defer r.Close()
	if rep.TornBytes != torn || rep.ZeroBytes != fileEnd-m.size()-torn {
		t.Fatalf("report %+v: want %d torn bytes and %d zero bytes", rep, torn, fileEnd-m.size()-torn)
	}
	checkSegment(t, r, m)
}

// TestZeroAheadSizedByTheWrite: a write carries 256 times its size in
// zeros, at least 64 KiB and at most ZeroAhead, so that a topic of small
// messages keeps 64 KiB of zeros on disk, not ZeroAhead.
func TestZeroAheadSizedByTheWrite(t *testing.T) {
	for _, tc := range []struct {
		zeroAhead int64
		payload   int
		zeros     func(batch int64) int64
	}{
		{MaxZeroAhead, 20, func(int64) int64 { return zeroAheadMin }},
		{MaxZeroAhead, 1000, func(b int64) int64 { return zeroAheadRatio * b }},
		{256 << 10, 1100, func(int64) int64 { return 256 << 10 }},
	} {
		e := memEnv(t)
		s := mustCreate(t, e, 0, Options{MaxBytes: 8 << 20, MaxEntries: 1024, ZeroAhead: tc.zeroAhead, SyncedWrites: true})
		m := newModel(0)
		appendBatches(t, s, m, mkBatch(t, 0, 1, tc.payload, 1))
		if got, want := e.fileSize(t, LogName(0))-m.size(), tc.zeros(m.size()); got != want {
			t.Fatalf("a write of %d bytes carried %d zeros, want %d", m.size(), got, want)
		}
		s.Close()
	}
}

// TestZeroAheadCutWhenLetGo: a segment that lets its files go while idle
// (ReleaseIdle) cuts its zeros first, so that a Close need not reopen it,
// and without a sync of the log (the budget's sweep releases many idle
// segments on a writer's path); the next small write after the reload
// writes new ones, and the log reads as written throughout.
func TestZeroAheadCutWhenLetGo(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 0, zaOpts)
		defer s.Close()
		m := newModel(0)
		fill(t, s, m, 5)
		if e.fileSize(t, LogName(0)) <= m.size() {
			t.Fatal("no zeros ahead: the test would prove nothing")
		}
		syncs := 0
		if e.mem != nil {
			e.mem.SetFault(func(op vfs.Op, name string) error {
				if op == vfs.OpSync && name == e.path(LogName(0)) {
					syncs++
				}
				return nil
			})
		}
		if !s.ReleaseIdle() {
			t.Fatal("ReleaseIdle let nothing go")
		}
		if e.mem != nil {
			e.mem.SetFault(nil)
		}
		if syncs != 0 {
			t.Fatalf("ReleaseIdle synced the log %d times to cut the zeros, want none", syncs)
		}
		if got := e.fileSize(t, LogName(0)); got != m.size() {
			t.Fatalf("log is %d bytes after ReleaseIdle, want %d (zeros cut)", got, m.size())
		}
		checkSegment(t, s, m)
		appendBatches(t, s, m, mkBatch(t, m.next(), 2, 30, 9))
		if got, want := e.fileSize(t, LogName(0)), m.size()+zaOpts.ZeroAhead; got != want {
			t.Fatalf("log is %d bytes after a write since the reload, want %d", got, want)
		}
		checkSegment(t, s, m)
	})
}
