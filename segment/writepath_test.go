package segment

import (
	"errors"
	"testing"
)

// TestRollbackSurvivesCrash protects the promise that a batch the caller
// was told failed never comes back after a crash: a rollback cuts the
// written (here even synced) batch off the log durably, so a crash right
// after it recovers only the committed batches.
func TestRollbackSurvivesCrash(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, testOpts)
	defer s.Close()
	m := newModel(0)
	fill(t, s, m, 4)
	b := mkBatch(t, m.next(), 2, 40, 9)
	if err := s.Write([][]byte{b}); err != nil {
		t.Fatal(err)
	}
	// The write reached the disk on this mirror (another mirror failed, so
	// the engine rolls this one back too).
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Rollback(); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	c := e.mem.Crash()
	s2, rep, err := Open(c, e.dir, 0, testOpts, false, true)
	if err != nil {
		t.Fatalf("Open after crash: %v (%+v)", err, rep)
	}
	defer s2.Close()
	checkSegment(t, s2, m)
}

// TestFailedSyncSticky protects the promise that a failed fsync is never
// retried as if it had succeeded: once a sync fails while committed bytes
// were unsynced, the segment refuses every later sync, write and seal, so
// it can never be sealed (and trusted at open) without them. A failed sync
// of uncommitted bytes alone (every committed byte synced before) is not
// sticky: those bytes are rolled back and writing goes on.
func TestFailedSyncSticky(t *testing.T) {
	boom := errors.New("EIO (injected)")
	t.Run("committed unsynced", func(t *testing.T) {
		e := memEnv(t)
		s := mustCreate(t, e, 0, testOpts)
		defer s.Close()
		m := newModel(0)
		fill(t, s, m, 3)
		b := mkBatch(t, m.next(), 2, 40, 9)
		if err := s.Write([][]byte{b}); err != nil {
			t.Fatal(err)
		}
		s.Commit() // acknowledged before its sync (fsync=interval)
		e.mem.SetFault(failOn(OpSync, e.path(LogName(0)), boom))
		if err := s.Sync(); !errors.Is(err, ErrSyncLost) || !errors.Is(err, boom) {
			t.Fatalf("Sync = %v, want ErrSyncLost wrapping the injected error", err)
		}
		e.mem.SetFault(nil)
		if err := s.Sync(); !errors.Is(err, ErrSyncLost) {
			t.Fatalf("retried Sync = %v, want the sticky ErrSyncLost", err)
		}
		if err := s.Seal(); !errors.Is(err, ErrSyncLost) || s.Sealed() || e.fileSize(t, SealName(0)) >= 0 {
			t.Fatalf("Seal after a failed sync = %v (sealed %v)", err, s.Sealed())
		}
		if err := s.Write([][]byte{mkBatch(t, m.next()+2, 1, 10, 10)}); !errors.Is(err, ErrSyncLost) {
			t.Fatalf("Write after a failed sync = %v, want ErrSyncLost", err)
		}
		if err := s.Rollback(); !errors.Is(err, ErrSyncLost) {
			t.Fatalf("Rollback after a failed sync = %v, want ErrSyncLost", err)
		}
		if err := s.Close(); !errors.Is(err, ErrSyncLost) {
			t.Fatalf("Close after a failed sync = %v, want ErrSyncLost", err)
		}
	})
	t.Run("only uncommitted unsynced", func(t *testing.T) {
		e := memEnv(t)
		s := mustCreate(t, e, 0, testOpts)
		defer s.Close()
		m := newModel(0)
		fill(t, s, m, 3)
		if err := s.Write([][]byte{mkBatch(t, m.next(), 2, 40, 9)}); err != nil {
			t.Fatal(err)
		}
		e.mem.SetFault(failOn(OpSync, e.path(LogName(0)), boom))
		if err := s.Sync(); err == nil || errors.Is(err, ErrSyncLost) {
			t.Fatalf("Sync = %v, want a plain failure", err)
		}
		e.mem.SetFault(nil)
		if err := s.Rollback(); err != nil {
			t.Fatal(err)
		}
		fill(t, s, m, 2)
		if err := s.Seal(); err != nil {
			t.Fatal(err)
		}
		checkSegment(t, s, m)
	})
}
