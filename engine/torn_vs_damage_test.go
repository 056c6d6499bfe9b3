package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// TestAckedDamageIsNotTorn protects the promise that an acknowledged
// message is never cut as a torn write: damage followed by batches from a
// later write group is corruption, reported, never truncated. Under
// fsync=always every batch below was synced before the next was written,
// but the SYNCED checkpoint lags (CheckpointInterval): a flipped byte in
// the second batch, on a single-copy topic, must leave all ten batches in
// place (the topic read-only, not shortened to one batch).
func TestAckedDamageIsNotTorn(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.Fsync = FsyncAlways
	opts.CheckpointInterval = time.Hour // a checkpoint that has not run yet
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	var last uint64
	for i := range 10 {
		last = mustAppend(t, e, "t", batchOf(t, msgBytes(uint64(i), 100)))
	}
	log := activeLog(t, e, "t")
	img := fs.Crash()
	e.Close()
	mustCorrupt(t, img, log, flip(200)) // inside the second batch
	e2 := openEngine(t, memOpts(img))
	defer e2.Close()
	_, end, err := e2.Offsets("t")
	if err != nil || end != last+1 {
		t.Fatalf("acked up to %d; after the restart the topic ends at %d (err %v), read-only: %v",
			last, end, err, e2.mustTopic(t, "t").readOnlyErr())
	}
}

// TestAckedDamageIsNotTornMirror: the same damage on one of two mirrors is
// repaired from the intact copy (the longest good copy wins); every
// acknowledged message reads back.
func TestAckedDamageIsNotTornMirror(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := mirrorOpts(fs, "/v1", "/v2")
	opts.Fsync = FsyncAlways
	opts.CheckpointInterval = time.Hour
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	var last uint64
	for i := range 10 {
		last = mustAppend(t, e, "t", batchOf(t, msgBytes(uint64(i), 100)))
	}
	log := activeLog(t, e, "t")
	img := fs.Crash()
	e.Close()
	if !strings.HasPrefix(log, "/v1/") {
		log = "/v1/" + strings.SplitN(log, "/", 3)[2]
	}
	mustCorrupt(t, img, log, flip(200))
	o2 := opts
	o2.FS = img
	e2 := openEngine(t, o2)
	defer e2.Close()
	if _, end, err := e2.Offsets("t"); err != nil || end != last+1 {
		t.Fatalf("mirror: acked up to %d, ends at %d (%v)", last, end, err)
	}
	if got := readAll(t, e2, "t", 0, last+1); len(got) != int(last+1) {
		t.Fatalf("read %d messages, want %d", len(got), last+1)
	}
}

func (e *Engine) mustTopic(t *testing.T, name string) *Topic {
	tp, err := e.topic(name)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}
