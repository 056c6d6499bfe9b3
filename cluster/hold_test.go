package cluster

import (
	"context"
	"testing"
)

// topicWithOne creates topic "t" through node 1, stores one message and
// waits until every replica holds it.
func (c *testCluster) topicWithOne() {
	c.t.Helper()
	if err := c.nodes[1].n.CreateTopic("t"); err != nil {
		c.t.Fatal(err)
	}
	if _, err := produce(context.Background(), c.nodes[1].n, "t", []byte("m0")); err != nil {
		c.t.Fatal(err)
	}
	c.waitSame("t", 1)
}

// followerOf returns a replica that does not lead topic "t" now.
func (c *testCluster) followerOf(lead *testNode) *testNode {
	for _, tn := range c.nodes {
		if tn != lead {
			return tn
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// holdApply stops tn applying topic "t" (its apply lock held) until the
// returned release is called; release may be called more than once, and
// is called when the test ends.
func holdApply(t *testing.T, tn *testNode) (release func()) {
	gc := make(chan *group, 1)
	tn.n.doq <- func() { gc <- tn.n.groups[tn.n.topics["t"].Group] }
	g := <-gc
	g.amu.Lock()
	held := true
	release = func() {
		if held {
			held = false
			g.amu.Unlock()
		}
	}
	t.Cleanup(release)
	return release
}
