package segment

import "testing"

// ReleaseIdle never unmaps a segment a reader still pins after its owner
// let go: a reader pins a sealed segment, then the owner removes it (the
// one pin left is the reader's), and the reader's bytes stay mapped.
func TestReleaseIdleKeepsReaderPinAfterRemove(t *testing.T) {
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

// The same when the owner lets go with Retire (a repair or a fenced
// volume): the reader's bytes stay mapped.
func TestReleaseIdleKeepsReaderPinAfterRetire(t *testing.T) {
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
