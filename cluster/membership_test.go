//go:build unix

package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/cluster"
)

func admin(t *testing.T, p *proc, req cluster.AdminRequest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := cluster.SendAdmin(ctx, p.caddr, &req); err != nil {
		t.Fatalf("%s through node %d: %v", req.Op, p.id, err)
	}
}

// waitFor polls cond until it holds (60 s).
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened; last: %s", what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newNode makes a fourth (fifth...) node that joins the cluster: its
// -peers names the first nodes and itself.
func (c *procCluster) newNode(id uint64) *proc {
	p := &proc{id: id, dir: c.t.TempDir(), addr: freePort(c.t), caddr: freePort(c.t)}
	p.peers = c.peers + fmt.Sprintf(",%d=%s", id, p.caddr)
	p.extra = []string{"-join"}
	c.t.Cleanup(func() {
		c.kill(p)
		if c.t.Failed() {
			p.mu.Lock()
			c.t.Logf("node %d log tail:\n%s", p.id, tailLines(p.logs.String(), 30))
			p.mu.Unlock()
		}
	})
	return p
}

// The cluster's membership changes under produce load, through Raft
// configuration changes: a fourth node joins, a topic's replica moves from
// node 1 to it (learner, then voter in place of node 1), node 1 is removed
// from the cluster; every acknowledged message is on the new replica set,
// whose logs are byte for byte the same, node 1 no longer holds the topic,
// new topics are placed on the remaining members, and the new node keeps
// its configuration across a SIGKILL and restart.
func TestClusterMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3)
	c.createTopic("t")
	l := c.startLoad("t", 3)
	for wait := time.Now().Add(30 * time.Second); l.count() < 300; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("only %d acknowledged", l.count())
		}
	}
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	n4 := c.newNode(4)
	admin(t, n2, cluster.AdminRequest{Op: "add-node", Node: 4, Addr: n4.caddr})
	c.start(n4)
	waitFor(t, "node 4 a voter of the metadata group", func() (bool, string) {
		s, err := status(n2)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(s.Meta.Replicas, []uint64{1, 2, 3, 4}) && len(s.Meta.Learners) == 0, fmt.Sprintf("meta %+v", s.Meta)
	})
	admin(t, n3, cluster.AdminRequest{Op: "move-replica", Topic: "t", From: 1, To: 4})
	waitFor(t, "the replica of t moved from node 1 to node 4", func() (bool, string) {
		g, err := topicStatus(n4, "t")
		if err != nil {
			return false, err.Error()
		}
		g1, err := topicStatus(n1, "t")
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(g.Replicas, []uint64{2, 3, 4}) && len(g.Learners) == 0 && len(g.Retiring) == 0 && g1.Role == "not a replica",
			fmt.Sprintf("node 4: %+v; node 1: %+v", g, g1)
	})
	mid := l.count()
	for wait := time.Now().Add(30 * time.Second); l.count() < mid+100; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("no acknowledgement after the move")
		}
	}
	l.finish()
	set := []*proc{n2, n3, n4}
	logs := c.convergeOn("t", l.count(), set)
	c.check(l, logs)
	t.Logf("moved t's replica from node 1 to 4 under load: %d messages acknowledged, %d bytes per replica, identical", len(l.acked), len(logs[0]))

	// Node 1 leaves the cluster; new topics go to the others.
	admin(t, n2, cluster.AdminRequest{Op: "remove-node", Node: 1})
	waitFor(t, "node 1 out of the metadata group", func() (bool, string) {
		s, err := status(n2)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(s.Meta.Replicas, []uint64{2, 3, 4}) && slices.Equal(s.Members, []uint64{2, 3, 4}), fmt.Sprintf("meta %+v members %v", s.Meta, s.Members)
	})
	c.kill(n1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, "tcp://"+n3.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, name := range []string{"u1", "u2", "u3"} {
		if err := cl.CreateTopic(ctx, name); err != nil {
			t.Fatal(err)
		}
		g, err := topicStatus(n3, name)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(g.Replicas, 1) || len(g.Replicas) != 3 {
			t.Fatalf("topic %s created after node 1 left has replicas %v", name, g.Replicas)
		}
	}

	// Node 4 restarts with its configuration: the group goes on without
	// node 1 (a majority of 2, 3, 4 acknowledges).
	c.kill(n4)
	c.start(n4)
	l2 := &load{acked: map[uint64]string{}, stop: make(chan struct{})}
	for i := range 100 {
		msg := fmt.Sprintf("after-%d", i)
		var off uint64
		for {
			off, err = cl.Produce(ctx, "t", []byte(msg))
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		l2.acked[off] = msg
	}
	for off, m := range l.acked {
		l2.acked[off] = m
	}
	c.kill(n2) // 3 and 4 are a majority of the new voters only
	for i := range 20 {
		pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
		off, err := cl.Produce(pctx, "t", []byte(fmt.Sprintf("two-%d", i)))
		pcancel()
		if err != nil {
			t.Fatalf("with nodes 3 and 4 up (voters 2, 3, 4), a produce failed: %v", err)
		}
		l2.acked[off] = fmt.Sprintf("two-%d", i)
	}
	c.start(n2)
	logs = c.convergeOn("t", len(l2.acked), set)
	c.check(l2, logs)
	t.Logf("node 1 removed, node 4 restarted, node 2 down for a while: %d messages, replicas 2, 3, 4 identical", len(l2.acked))
}

// A dead broker is replaced (the README's runbook): node 3 is killed for
// good, a new node 4 joins, the topic's replica moves from 3 to 4 (nodes 1
// and 2 are a majority of both configurations; the Raft log is compacted,
// so node 4 catches up from a snapshot, taken after it was added, though
// the topic is idle meanwhile), node 3 is removed; the topic
// keeps every acknowledged message, the same bytes on 1, 2 and 4; node 4,
// restarted from its own compacted log, keeps the group's configuration
// (it and node 2 acknowledge while node 1 is down).
func TestClusterReplaceDeadNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	// Small Raft logs: the new replica catches up from a snapshot (the
	// leader compacted past what it lacks) and its segments from a peer.
	c := startProcCluster(t, 3, "-raft-snapshot-bytes", "65536")
	c.createTopic("t")
	l := c.startLoad("t", 2)
	for wait := time.Now().Add(60 * time.Second); l.count() < 3000; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("only %d acknowledged", l.count())
		}
	}
	// The topic is idle while its replica moves: the new replica must
	// catch up without new writes making the leader compact again.
	l.finish()
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	c.kill(n3)
	n4 := c.newNode(4)
	admin(t, n1, cluster.AdminRequest{Op: "add-node", Node: 4, Addr: n4.caddr})
	c.start(n4)
	admin(t, n2, cluster.AdminRequest{Op: "move-replica", Topic: "t", From: 3, To: 4})
	waitFor(t, "the replica of t moved from dead node 3 to node 4", func() (bool, string) {
		g, err := topicStatus(n4, "t")
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(g.Replicas, []uint64{1, 2, 4}) && len(g.Learners) == 0 && len(g.Retiring) == 0, fmt.Sprintf("node 4: %+v", g)
	})
	admin(t, n1, cluster.AdminRequest{Op: "remove-node", Node: 3})
	// Enough after the move for node 4 to compact its own log past the
	// configuration changes.
	l2 := c.startLoad("t", 2)
	for wait := time.Now().Add(60 * time.Second); l2.count() < 2000; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("only %d acknowledged after the replacement", l2.count())
		}
	}
	l2.finish()
	for off, m := range l2.acked {
		if prev, ok := l.acked[off]; ok {
			t.Fatalf("offset %d acknowledged for %q and %q", off, prev, m)
		}
		l.acked[off] = m
	}
	logs := c.convergeOn("t", len(l.acked), []*proc{n1, n2, n4})
	c.check(l, logs)
	// Node 4 restarts from its compacted log with the group's
	// configuration: with node 1 down, nodes 2 and 4 acknowledge.
	c.kill(n4)
	c.start(n4)
	c.kill(n1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, "tcp://"+n2.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 50 {
		msg := fmt.Sprintf("late-%d", i)
		var off uint64
		for {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			off, err = cl.Produce(pctx, "t", []byte(msg))
			pcancel()
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("nodes 2 and 4 (of voters 1, 2, 4) did not acknowledge: %v", err)
		}
		l.acked[off] = msg
	}
	c.start(n1)
	n4.mu.Lock()
	refused := strings.Count(n4.logs.String(), "attempted to restore snapshot but it is not in the ConfState")
	n4.mu.Unlock()
	if refused > 0 {
		t.Fatalf("node 4 was sent %d snapshots from before it was added (Raft refuses them)", refused)
	}
	logs = c.convergeOn("t", len(l.acked), []*proc{n1, n2, n4})
	c.check(l, logs)
	s, err := status(n2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Members, []uint64{1, 2, 4}) {
		t.Fatalf("members %v after removing node 3", s.Members)
	}
	n4.mu.Lock()
	fromSnap := strings.Contains(n4.logs.String(), "received a snapshot")
	n4.mu.Unlock()
	if !fromSnap {
		t.Fatal("node 4 caught up without a snapshot: the test did not cover catch-up past a compaction")
	}
	t.Logf("dead node 3 replaced by 4 (caught up from a snapshot): %d messages acknowledged, %d bytes per replica, identical", len(l.acked), len(logs[0]))
}
