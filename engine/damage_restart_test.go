package engine

import "testing"

// Promise (acknowledged data is never silently truncated): damage below
// the synced offset stays corruption on every later open; the checkpoint
// never drops below what it recorded.
func TestDamageBelowSyncedSurvivesRestart(t *testing.T) {
	f := newTornFixture(t)
	img := f.fs.Crash()
	o := f.opts
	o.FS = img
	if err := openEngine(t, o).Close(); err != nil {
		t.Fatal(err)
	}
	cut := f.lastPos + 10
	img.Corrupt(f.log, func(b []byte) []byte { return append([]byte(nil), b[:cut]...) })
	e := openEngine(t, o)
	info := describe(t, e, "t")
	if info.ReadOnly == nil {
		t.Fatalf("%+v: want read-only", info)
	}
	t.Logf("first open: %+v", info)
	e.Close()
	e2 := openEngine(t, o)
	info2 := describe(t, e2, "t")
	b, _ := img.ReadFile(f.log)
	t.Logf("second open: %+v, log %d bytes (damaged image %d)", info2, len(b), cut)
	if info2.ReadOnly == nil {
		t.Errorf("second open: damage below the synced offset was forgotten")
	}
}
