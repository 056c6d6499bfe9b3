package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
)

// leaderNode waits until one node coordinates topic's groups and returns it.
func (c *testCluster) coordinatorOf(topic string) *testNode {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, tn := range c.nodes {
			if tn.n == nil {
				continue
			}
			if tn.n.coordinator(topic) == nil {
				return tn
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no node coordinates the groups of %q", topic)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCommitted waits until every running replica's copy of the group has
// committed at least want, and all the same.
func (c *testCluster) waitCommitted(topic, group string, want uint64) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got []uint64
		same := true
		for _, tn := range c.nodes {
			if tn.n == nil {
				continue
			}
			info, err := tn.n.DescribeGroup(topic, group)
			if err != nil || info.Committed != want {
				same = false
			}
			got = append(got, info.Committed)
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("group %q committed %v on the replicas, want %d on each", group, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A consumer group's acks replicate through the topic's Raft group: every
// replica's copy of the group holds the same committed offset, a replica
// that does not lead refuses group calls, and after the leadership moves
// the group continues on the new leader from the committed offset.
func TestGroupAcksReplicate(t *testing.T) {
	c := newTestCluster(t, 3)
	if err := c.nodes[1].n.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 20 {
		if _, err := produce(ctx, c.nodes[1].n, "t", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	lead := c.coordinatorOf("t")
	for _, tn := range c.nodes {
		if tn != lead {
			if _, err := tn.n.JoinGroup(ctx, "t", "g", ""); err == nil {
				t.Fatalf("node %d (not the leader) took a group call", tn.id)
			}
		}
	}
	if _, err := lead.n.CreateGroup(ctx, "t", "g", engine.GroupConfig{}); err != nil {
		t.Fatal(err)
	}
	m, err := lead.n.JoinGroup(ctx, "t", "g", "a")
	if err != nil {
		t.Fatal(err)
	}
	res, err := lead.n.GroupFetch(ctx, "t", "g", m, 10, time.Second)
	if err != nil || len(res.Leases) == 0 {
		t.Fatalf("fetch: %v %v", res, err)
	}
	if err := lead.n.GroupAck(ctx, "t", "g", m, []engine.OffsetRange{{First: 0, Next: 10}}); err != nil {
		t.Fatal(err)
	}
	c.waitCommitted("t", "g", 10)

	// Move the leadership: the new leader coordinates from offset 10.
	var to uint64
	for id := range c.nodes {
		if id != lead.id {
			to = id
			break
		}
	}
	for i := 0; ; i++ {
		lead.n.TransferLeader(ctx, "t", to)
		time.Sleep(100 * time.Millisecond)
		if nl := c.coordinatorOf("t"); nl != lead {
			lead = nl
			break
		}
		if i > 100 {
			t.Fatal("leadership did not move")
		}
	}
	// balance() may hand the leadership back at any time: each step runs
	// on the node coordinating then, again while it fails.
	onLeader := func(what string, f func(tn *testNode) error) {
		t.Helper()
		var err error
		for range 100 {
			if err = f(c.coordinatorOf("t")); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: %v", what, err)
	}
	if _, err := c.coordinatorOf("t").n.GroupFetch(ctx, "t", "g", m, 10, 0); err == nil {
		t.Fatal("the old member is known after the leadership moved")
	}
	// fetchAck joins, fetches (the first lease must start at from unless
	// an earlier attempt's ack made it already) and acks up to upTo.
	fetchAck := func(tn *testNode, from, upTo uint64) error {
		if info, err := tn.n.DescribeGroup("t", "g"); err == nil && info.Committed >= upTo {
			return nil // an earlier attempt's ack was committed, its answer lost
		}
		m, err := tn.n.JoinGroup(ctx, "t", "g", "b")
		if err != nil {
			return err
		}
		res, err := tn.n.GroupFetch(ctx, "t", "g", m, 100, time.Second)
		if err != nil {
			return err
		}
		if len(res.Leases) == 0 || res.Leases[0].First != from {
			t.Fatalf("fetch on node %d: %+v, want from offset %d", tn.id, res, from)
		}
		return tn.n.GroupAckUpTo(ctx, "t", "g", m, upTo)
	}
	onLeader("fetch from 10, ack up to 20", func(tn *testNode) error { return fetchAck(tn, 10, 20) })
	c.waitCommitted("t", "g", 20)

	// A follower that was down catches up with the acks made meanwhile;
	// a restart of every node keeps the committed offset.
	var down *testNode
	for _, tn := range c.nodes {
		if tn != c.coordinatorOf("t") {
			down = tn
			break
		}
	}
	c.stop(down)
	for i := range 10 {
		if _, err := produce(ctx, c.coordinatorOf("t").n, "t", fmt.Appendf(nil, "n%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	onLeader("fetch from 20, ack up to 25", func(tn *testNode) error { return fetchAck(tn, 20, 25) })
	c.start(down, nil)
	c.waitCommitted("t", "g", 25)
	for _, tn := range c.nodes {
		c.stop(tn)
	}
	for _, tn := range c.nodes {
		c.start(tn, nil)
	}
	c.waitCommitted("t", "g", 25)
	onLeader("fetch from 25 after restarting every node", func(tn *testNode) error { return fetchAck(tn, 25, 26) })
	c.waitCommitted("t", "g", 26)
}
