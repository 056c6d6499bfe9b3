package segment

import "testing"

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
