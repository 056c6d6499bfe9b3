package segment

import (
	"testing"

	"github.com/haraqa/haraqa/record"
)

// The batches of an active segment that let its files go are still found
// by LastBatches: its headers are read through the in-memory index, which
// the .idx file does not yet hold, so the producer state rebuilt from the
// log tail misses no batch.
func TestLastBatchesAfterActiveSegmentReleased(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		s := mustCreate(t, e, 0, testOpts)
		m := newModel(0)
		fill(t, s, m, 5)
		var loaded int
		err := s.LastBatches(10, func(*record.Header) bool { loaded++; return true })
		if err != nil || loaded != 5 {
			t.Fatalf("loaded: %d headers, err %v", loaded, err)
		}
		if !s.ReleaseIdle() {
			t.Fatal("not released")
		}
		var n int
		err = s.LastBatches(10, func(*record.Header) bool { n++; return true })
		if err != nil || n != 5 {
			t.Fatalf("after release: %d headers (want 5), err %v", n, err)
		}
		s.Close()
	})
}
