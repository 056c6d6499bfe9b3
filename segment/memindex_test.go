package segment

import (
	"sync"
	"testing"
)

// Promise: an active (unsealed) segment costs one descriptor and one
// mapping — its log — whatever it holds, and nothing once let go; a
// sealed segment being read costs one descriptor and two mappings. Many
// topics written at once must fit the process's descriptor limit and
// vm.max_map_count.
func TestActiveSegmentCostsOneFileOneMap(t *testing.T) {
	e := memEnv(t)
	want := func(what string, files, maps int) {
		t.Helper()
		if f, m := e.mem.OpenFiles(); f != files || m != maps {
			t.Fatalf("%s: %d files and %d mappings open, want %d and %d", what, f, m, files, maps)
		}
	}
	s := mustCreate(t, e, 0, testOpts)
	want("created", 1, 1)
	m := newModel(0)
	fill(t, s, m, 300) // a large in-memory index (4.8 KiB)
	want("written", 1, 1)
	checkSegment(t, s, m)
	want("read", 1, 1)
	if !s.ReleaseIdle() {
		t.Fatal("ReleaseIdle refused an idle segment")
	}
	want("released", 0, 0)
	if s.mem.Load() != nil {
		t.Fatal("a large in-memory index was kept after release")
	}
	checkSegment(t, s, m) // loads it again, the index read back from its file
	want("read again", 1, 1)
	fill(t, s, m, 5)
	checkSegment(t, s, m)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	s.ReleaseIdle()
	want("sealed and released", 0, 0)
	checkSegment(t, s, m)
	want("sealed and read", 1, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want("closed", 0, 0)
	s2, rep := mustOpen(t, e, 0, testOpts, false, true)
	defer s2.Close()
	if rep.Scanned || !s2.Sealed() {
		t.Fatalf("reopen of the sealed segment: %+v, sealed %v", rep, s2.Sealed())
	}
	checkSegment(t, s2, m)
}

// Promise: an active segment's index, kept in memory, is on disk after a
// clean close (the next open trusts it without a scan), and after a crash
// the index is rebuilt from the log with every synced batch readable.
func TestMemIndexCloseAndCrash(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		e := memEnv(t)
		s := mustCreate(t, e, 0, testOpts)
		m := newModel(0)
		fill(t, s, m, 40)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, rep := mustOpen(t, e, 0, testOpts, true, true)
		defer s2.Close()
		if rep.Scanned || rep.IndexRebuilt {
			t.Fatalf("clean reopen scanned: %+v", rep)
		}
		checkSegment(t, s2, m)
	})
	t.Run("crash", func(t *testing.T) {
		e := memEnv(t)
		s := mustCreate(t, e, 0, testOpts)
		m := newModel(0)
		fill(t, s, m, 40)
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		c := e.mem.Crash()
		s2, rep, err := Open(c, e.dir, 0, testOpts, false, true)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if !rep.IndexRebuilt {
			t.Fatalf("crash reopen did not rebuild the index: %+v", rep)
		}
		checkSegment(t, s2, m)
	})
}

// Promise: a segment may be let go by anyone (the engine under descriptor
// pressure) while its writer writes and readers read: no write is lost,
// no read sees anything but committed batches, and the release waits for
// the writer's bytes in flight.
func TestReleaseWhileWriting(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, Options{MaxBytes: 4 << 20, MaxEntries: 1 << 16})
	defer s.Close()
	m := newModel(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				s.ReleaseIdle()
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if !s.Acquire() {
				return
			}
			if n := s.Next(); n > 0 {
				if _, err := s.Find(n-1, 1, 1<<20); err != nil {
					t.Errorf("Find(%d): %v", n-1, err)
				}
			}
			s.Release()
		}
	}()
	for range 300 {
		fill(t, s, m, 1)
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	checkSegment(t, s, m)
}
