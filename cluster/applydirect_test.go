package cluster

import (
	"context"
	"fmt"
	"testing"
)

// A produce at a time is written to each replica's engine by the topic's
// apply goroutine itself when the engine's writer is idle: the produce is
// answered without a hand-off to the writer goroutine and back (the R3
// single-message latency), and it is still stored, in order, on every
// replica.
func TestApplyWritesOneBatchEntriesItself(t *testing.T) {
	c := newTestCluster(t, 3)
	c.topicWithOne()
	lead := c.leaderOf("t")
	const n = 20
	for i := range n {
		if off, err := produce(context.Background(), lead.n, "t", fmt.Appendf(nil, "m%d", i+1)); err != nil || off != uint64(i+1) {
			t.Fatalf("produce %d: offset %d, %v", i+1, off, err)
		}
	}
	c.waitSame("t", n+1)
	gc := make(chan *group, 1)
	lead.n.doq <- func() { gc <- lead.n.groups[lead.n.topics["t"].Group] }
	g := <-gc
	if d := g.appliedDirect.Load(); d < n/2 {
		t.Errorf("the leader's apply wrote %d of %d one-batch entries itself, want at least %d", d, n, n/2)
	}
}
