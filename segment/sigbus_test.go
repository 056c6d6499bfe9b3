package segment

import (
	"errors"
	"os"
	"testing"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// Tests of the fault guard (fault.go) on real files: a log or index cut
// under its mapping makes a read of the cut pages raise SIGBUS, which
// kills the process unless the reader turned it into an error.

// sigbusSegment makes a segment of many pages on the OS file system: 60
// batches sealed (sealed) or left open, reopened cold. It returns the
// environment, the options, and the model.
func sigbusSegment(t *testing.T, sealed bool) (*fsEnv, Options, *model) {
	t.Helper()
	e := osEnv(t)
	opts := Options{MaxBytes: 1 << 20, MaxEntries: 1024}
	s := mustCreate(t, e, 0, opts)
	m := newModel(0)
	for i := range 60 {
		appendBatches(t, s, m, mkBatch(t, m.next(), 3, 400, int64(1000+i)))
	}
	if sealed {
		if err := s.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return e, opts, m
}

// mapped opens the segment (clean: trusted, no scan), pins it and maps it
// with a read, so that a later cut lands under a live mapping.
func mapped(t *testing.T, e *fsEnv, opts Options, m *model) *Segment {
	t.Helper()
	s, _ := mustOpen(t, e, 0, opts, true, true)
	t.Cleanup(s.Retire)
	if !s.Acquire() {
		t.Fatal("Acquire failed")
	}
	t.Cleanup(s.Release)
	if _, err := s.Find(m.next()-1, 1, 0); err != nil {
		t.Fatalf("Find before the cut: %v", err)
	}
	return s
}

func cutFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func wantFault(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s on a file cut under its mapping: %v, want ErrCorrupt", what, err)
	}
	t.Logf("%s: %v", what, err)
}

// Promise: a segment file cut under its mapping (or a page the disk cannot
// read) fails the one call that reads it — the scrubber's check, a read,
// a repair's copy, a lookup by time, the recovery scan at open, the hash
// taken before a seal — and never kills the broker.
func TestReadersOfACutMappingGetAnError(t *testing.T) {
	t.Run("Verify", func(t *testing.T) {
		e, opts, m := sigbusSegment(t, true)
		s := mapped(t, e, opts, m)
		cutFile(t, e.path(LogName(0)), 0)
		wantFault(t, "Verify", s.Verify())
	})
	t.Run("FindAndVerifyRange", func(t *testing.T) {
		e, opts, m := sigbusSegment(t, true)
		s := mapped(t, e, opts, m)
		r, err := s.Find(0, 1<<20, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		cutFile(t, e.path(LogName(0)), 0)
		good, err := s.VerifyRange(r)
		wantFault(t, "VerifyRange", err)
		if good.Next != good.First {
			t.Fatalf("VerifyRange passed %+v of a log cut to nothing", good)
		}
		_, err = s.Find(m.next()-1, 1, 0) // reads the last batch's header
		wantFault(t, "Find", err)
	})
	t.Run("CopyTo", func(t *testing.T) {
		e, opts, m := sigbusSegment(t, true)
		s := mapped(t, e, opts, m)
		cutFile(t, e.path(LogName(0)), 0)
		dst := t.TempDir()
		c, _, err := s.CopyTo(vfs.OSFS{}, dst, opts)
		if c != nil {
			c.Retire()
		}
		wantFault(t, "CopyTo", err)
		if _, err := os.Stat(dst + "/" + LogName(0)); !os.IsNotExist(err) {
			t.Fatalf("a copy of a cut source was put in place: %v", err)
		}
	})
	t.Run("LastBatches", func(t *testing.T) {
		e, opts, m := sigbusSegment(t, true)
		s := mapped(t, e, opts, m)
		cutFile(t, e.path(LogName(0)), 0)
		wantFault(t, "LastBatches", s.LastBatches(10, func(*record.Header) bool { return true }))
	})
	t.Run("FindTime", func(t *testing.T) {
		e, opts, m := sigbusSegment(t, true)
		s := mapped(t, e, opts, m)
		cutFile(t, e.path(IndexName(0)), 0)
		_, _, err := s.FindTime(1030)
		wantFault(t, "FindTime", err)
	})
	t.Run("SealDigest", func(t *testing.T) {
		e, opts, m := sigbusSegment(t, false)
		s := mapped(t, e, opts, m) // trusted at open: hashed only at the seal
		cutFile(t, e.path(LogName(0)), 0)
		wantFault(t, "Seal", s.Seal())
		if s.Sealed() {
			t.Fatal("a segment whose log faulted was sealed")
		}
	})
	t.Run("RecoveryScan", func(t *testing.T) {
		e, opts, _ := sigbusSegment(t, false)
		testHookScan = func(log string) { cutFile(t, log, 0) }
		defer func() { testHookScan = nil }()
		s, _, err := Open(e.fs, e.dir, 0, opts, false, true)
		wantFault(t, "Open's recovery scan", err)
		if s != nil {
			t.Fatal("Open returned a segment whose scan faulted")
		}
	})
}
