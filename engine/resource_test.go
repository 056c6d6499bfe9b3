package engine

import (
	"context"
	"errors"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// waitCold waits until the active segments of topic on every mirror let
// their files go (idle release).
func waitCold(t *testing.T, e *Engine, topic string) {
	t.Helper()
	tp, err := e.topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		cold := true
		for _, m := range tp.view.Load().mirrors {
			cold = cold && !m.active().Loaded()
		}
		if cold {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("active segments still hold their files after idle release")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Promise: running out of file descriptors (EMFILE) is never taken for a
// failing disk. An append or a read that cannot open a segment's files
// fails with ErrResource — retriable, nothing stored — and fences no
// volume, fails over to no mirror and repairs nothing; the first failure
// of an episode is logged once with the numbers, and once files can be
// opened again everything works as before with no offset lost or skipped.
func TestResourceErrorFencesNothing(t *testing.T) {
	fs := vfs.NewMemFS()
	rec := &logRecorder{}
	opts := mirrorOpts(fs, "/v1", "/v2")
	opts.Logger = rec.logger()
	opts.IdleRelease = 20 * time.Millisecond
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	m.appendBatch(t, e, "t", genMsgs(0, 3, 50))
	waitCold(t, e, "t")

	f := newFaults(fs, syscall.EMFILE, vfs.OpOpen)
	f.set(true, "/v2")
	for range 2 {
		_, err := e.Append(context.Background(), "t", batchOf(t, genMsgs(100, 2, 50)...))
		if !errors.Is(err, ErrResource) || errors.Is(err, ErrStorage) {
			t.Fatalf("append out of descriptors: %v, want ErrResource", err)
		}
	}
	var res ReadResult
	if err := e.Read("t", 0, 10, 1<<20, &res); !errors.Is(err, ErrResource) {
		t.Fatalf("read out of descriptors: %v, want ErrResource", err)
	}
	res.Release()
	st := e.Stats()
	if st.VolumesFenced != 0 || st.ReadFailovers != 0 || st.ResourceErrors != 3 {
		t.Fatalf("after resource errors: fenced %d, failovers %d, resource errors %d; want 0, 0, 3",
			st.VolumesFenced, st.ReadFailovers, st.ResourceErrors)
	}
	if n := rec.count("out of file descriptors or memory mappings"); n != 1 {
		t.Fatalf("episode logged %d times, want once", n)
	}
	f.set(false, "/v2")
	// The episode ends with a success after a quiet spell.
	e.resource.lastFail.Store(time.Now().Add(-time.Minute).UnixNano())
	m.appendBatch(t, e, "t", genMsgs(200, 4, 50))
	m.check(t, e, "t", 0)
	wantStates(t, e, VolumeHealthy, VolumeHealthy)
	if n := rec.count("available again"); n != 1 {
		t.Fatalf("end of episode logged %d times, want once", n)
	}
	if st := e.Stats(); st.SegmentsRepaired != 0 {
		t.Fatalf("%d segments repaired after a resource error", st.SegmentsRepaired)
	}
}

func topicName(i int) string { return "topic-" + strconv.Itoa(i) }
