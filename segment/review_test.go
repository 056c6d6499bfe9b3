package segment

import "testing"

// A reader pins a sealed segment, then the owner removes it: refs == 1 is
// the reader's pin, yet ReleaseIdle unmaps under it.
func TestReviewReleaseIdleAfterRemove(t *testing.T) {
	e := osEnv(t)
	s := mustCreate(t, e, 0, testOpts)
	m := newModel(0)
	fill(t, s, m, 5)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	if !s.Acquire() {
		t.Fatal("acquire")
	}
	r, err := s.Find(0, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Bytes(r)
	s.Remove() // retention: owner's pin dropped, reader's pin remains
	if s.ReleaseIdle() {
		t.Errorf("ReleaseIdle released a segment a reader still pins (owner gone)")
	}
	_ = b[0] // SIGSEGV if unmapped
	s.Release()
}

// Same, with Retire (repair/fence).
func TestReviewReleaseIdleAfterRetire(t *testing.T) {
	e := osEnv(t)
	s := mustCreate(t, e, 0, testOpts)
	m := newModel(0)
	fill(t, s, m, 5)
	s.Seal()
	s.Acquire()
	r, _ := s.Find(0, 1, 1)
	s.Retire()
	if s.ReleaseIdle() {
		t.Errorf("ReleaseIdle released a retired segment a reader pins")
	}
	_ = s.Bytes(r) // panics: logMap nil
	s.Release()
}
