package engine

import (
	"sync"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// Members that start together each create the group (the same
// configuration, idempotent) and join it: every one of them gets in. A
// CreateGroup that finds the same group still being written waits for
// that write instead of reporting success for a group that JoinGroup
// cannot find yet.
func TestGroupConcurrentCreateThenJoin(t *testing.T) {
	for round := range 20 {
		e := openEngine(t, memOpts(vfs.NewMemFS()))
		if err := e.CreateTopic("t"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.CreateGroup(bg, "t", "g", GroupConfig{}); err != nil {
					errs <- err
					return
				}
				if _, err := e.JoinGroup(bg, "t", "g", ""); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}
