package segment

import (
	"sync"
	"testing"
	"time"
)

// TestReleaseIdle checks the promise behind bounded descriptors: a
// segment nobody reads can close its files and mappings and reopen them
// on the next read or write, while a segment a reader has pinned is never
// unmapped under it.
func TestReleaseIdle(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		opened := 0
		opts := testOpts
		opts.OnLoad = func(*Segment) { opened++ }
		s := mustCreate(t, e, 0, opts)
		m := newModel(0)
		fill(t, s, m, 5)
		if !s.Acquire() {
			t.Fatal("Acquire")
		}
		if s.ReleaseIdle() {
			t.Fatal("released a segment a reader holds")
		}
		r, err := s.Find(0, 1, 1)
		if err != nil || string(s.Bytes(r)) != string(m.batches[0]) {
			t.Fatalf("read while pinned: %v", err)
		}
		s.Release()
		if !s.ReleaseIdle() {
			t.Fatal("an idle, loaded segment was not released")
		}
		if s.ReleaseIdle() {
			t.Fatal("released twice")
		}
		before := opened
		checkSegment(t, s, m) // reads reopen it
		if opened != before+1 {
			t.Fatalf("OnLoad ran %d times on reopen, want 1", opened-before)
		}
		s.ReleaseIdle()
		fill(t, s, m, 2) // so do writes
		checkSegment(t, s, m)
		if err := s.Seal(); err != nil {
			t.Fatal(err)
		}
		if !s.ReleaseIdle() {
			t.Fatal("a sealed idle segment was not released")
		}
		if err := s.Verify(); err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
}

// TestReleaseIdleRacingLastPin checks that a removed segment gives its
// disk space back: once its owner let go and the last reader releases
// its pin, its descriptors and mappings are closed, even when an idle
// release (the open-segment trim) looks at the segment at that moment.
func TestReleaseIdleRacingLastPin(t *testing.T) {
	e := memEnv(t)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 3000 && time.Now().Before(deadline); i++ {
		s := mustCreate(t, e, uint64(i)*1000, testOpts)
		fill(t, s, newModel(uint64(i)*1000), 1)
		if err := s.Seal(); err != nil {
			t.Fatal(err)
		}
		if !s.Acquire() {
			t.Fatal("Acquire")
		}
		if err := s.Remove(); err != nil { // the owner lets go; a reader still holds it
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() { defer wg.Done(); <-start; s.ReleaseIdle() }()
		go func() { defer wg.Done(); <-start; s.Release() }()
		close(start)
		wg.Wait()
		if files, maps := e.mem.OpenFiles(); files != 0 || maps != 0 {
			t.Fatalf("cycle %d: %d files and %d mappings still open after the last pin was released", i, files, maps)
		}
	}
}

// TestReleaseIdleLastPinDroppedMeanwhile is the deterministic form of the
// race above: the last reader releases its pin while an idle release
// holds the count; the files must still be closed.
func TestReleaseIdleLastPinDroppedMeanwhile(t *testing.T) {
	for _, owner := range []string{"remove", "reader"} {
		t.Run(owner, func(t *testing.T) {
			e := memEnv(t)
			s := mustCreate(t, e, 0, testOpts)
			fill(t, s, newModel(0), 3)
			if err := s.Seal(); err != nil {
				t.Fatal(err)
			}
			if owner == "remove" {
				// The owner let go first; the reader's pin is dropped
				// during the idle release.
				if !s.Acquire() {
					t.Fatal("Acquire")
				}
				if err := s.Remove(); err != nil {
					t.Fatal(err)
				}
				testHookReleaseIdle = func(s *Segment) { s.Release() }
			} else {
				// The owner's pin is the one left; it is dropped (Remove)
				// during the idle release.
				testHookReleaseIdle = func(s *Segment) { s.Remove() }
			}
			t.Cleanup(func() { testHookReleaseIdle = nil })
			s.ReleaseIdle()
			testHookReleaseIdle = nil
			if files, maps := e.mem.OpenFiles(); files != 0 || maps != 0 {
				t.Fatalf("%d files and %d mappings still open after the last pin was released", files, maps)
			}
			if s.Acquire() {
				t.Fatal("a removed segment with no pins could be pinned again")
			}
		})
	}
}
