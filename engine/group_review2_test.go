package engine

import (
	"sync"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// A group created while its topic is being deleted never outlives the
// topic: no group state is left behind for a topic of the same name
// created later (an old group's committed offset there would hide that
// topic's acknowledged messages).
func TestGroupCreateRacingTopicDelete(t *testing.T) {
	fs := vfs.NewMemFS()
	e := openEngine(t, memOpts(fs))
	for i := range 3000 {
		mustCreate(t, e, "t")
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); e.CreateGroup(bg, "t", "g", GroupConfig{}) }()
		go func() { defer wg.Done(); e.DeleteTopic("t") }()
		wg.Wait()
		if _, err := e.anyTopic("t"); err == nil {
			e.DeleteTopic("t")
			continue
		}
		if _, err := e.anyTopic(groupLogName("t")); err == nil {
			t.Fatalf("round %d: the group state of deleted topic %q is left behind", i, "t")
		}
	}
}
