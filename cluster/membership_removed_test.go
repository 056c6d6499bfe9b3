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

// A node joins through one running node: its -peers names only itself and
// a node that does not lead the metadata group, and it learns the other
// members' addresses from it (also across a restart), becomes a voter and
// takes a replica. A node removed from the cluster stops serving as a
// member: it says so in its log, refuses produces, reads and admin
// commands with an error that names the removal, sends its peers nothing
// (the others' metadata group goes on without it), and stays idle, also
// after a restart; a node removed while it was down learns it from a peer
// once it is back.
func TestClusterJoinThroughOneNodeAndRemovedNodeStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3)
	c.createTopic("t")
	produceBulk(t, c.nodes[0], "t", 32, 100)
	var metaLead uint64
	waitFor(t, "a metadata leader", func() (bool, string) {
		s, err := status(c.nodes[0])
		if err != nil {
			return false, err.Error()
		}
		metaLead = s.Meta.Leader
		return metaLead != 0, fmt.Sprintf("meta %+v", s.Meta)
	})
	through := c.byID(metaLead%3 + 1) // not the metadata leader
	n4 := c.newNode(4)
	n4.peers = fmt.Sprintf("%d=%s,4=%s", through.id, through.caddr, n4.caddr)
	admin(t, through, cluster.AdminRequest{Op: "add-node", Node: 4, Addr: n4.caddr})
	c.start(n4)
	waitFor(t, "node 4 a voter of the metadata group", func() (bool, string) {
		s, err := status(through)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(s.Meta.Replicas, []uint64{1, 2, 3, 4}) && len(s.Meta.Learners) == 0, fmt.Sprintf("meta %+v", s.Meta)
	})
	// It takes node 3's replica of t (the others hold 1 and 2), also after
	// a restart that knows only -peers and what it learned.
	c.kill(n4)
	c.start(n4)
	if s, err := status(n4); err != nil || len(s.Peers) != 4 {
		t.Fatalf("node 4 knows peers %v (%v), want all 4", s.Peers, err)
	}
	n3 := c.nodes[2]
	admin(t, c.nodes[0], cluster.AdminRequest{Op: "move-replica", Topic: "t", From: 3, To: 4})
	waitFor(t, "t's replica moved from node 3 to node 4", func() (bool, string) {
		g, err := topicStatus(n4, "t")
		return err == nil && slices.Equal(g.Replicas, []uint64{1, 2, 4}) && len(g.Learners) == 0 && len(g.Retiring) == 0, fmt.Sprintf("%+v %v", g, err)
	})
	c.convergeOn("t", 32, []*proc{c.nodes[0], c.nodes[1], n4})

	// Node 3 is removed while it runs.
	admin(t, c.nodes[0], cluster.AdminRequest{Op: "remove-node", Node: 3})
	waitFor(t, "node 3 out of the metadata group", func() (bool, string) {
		s, err := status(c.nodes[0])
		return err == nil && slices.Equal(s.Meta.Replicas, []uint64{1, 2, 4}), fmt.Sprintf("%+v %v", s.Meta, err)
	})
	refused := func(p *proc) {
		t.Helper()
		waitFor(t, fmt.Sprintf("node %d refusing as removed", p.id), func() (bool, string) {
			p.mu.Lock()
			logged := strings.Contains(p.logs.String(), "this node was removed from the cluster")
			p.mu.Unlock()
			return logged, "no log line"
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl, err := client.Dial(ctx, "tcp://"+p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := cl.Produce(ctx, "t", []byte("x")); err == nil || !strings.Contains(err.Error(), "removed from the cluster") {
			t.Fatalf("a produce through removed node %d: %v, want a refusal naming the removal", p.id, err)
		}
		if _, _, err := cl.Offsets(ctx, "t"); err == nil || !strings.Contains(err.Error(), "removed from the cluster") {
			t.Fatalf("offsets through removed node %d: %v, want a refusal naming the removal", p.id, err)
		}
		if err := cluster.SendAdmin(ctx, p.caddr, &cluster.AdminRequest{Op: "remove-node", Node: 4}); err == nil || !strings.Contains(err.Error(), "removed from the cluster") {
			t.Fatalf("an admin command through removed node %d: %v, want a refusal", p.id, err)
		}
		if !alive(p) {
			t.Fatalf("removed node %d exited; the runbook says it idles until stopped", p.id)
		}
	}
	refused(n3)
	c.stop(n3)
	c.start(n3)
	refused(n3)
	// The others go on: a produce through node 1 is acknowledged.
	produceBulk(t, c.nodes[0], "t", 16, 100)

	// Node 2 is removed while it is down (its replica of t moved to a new
	// node 5 first): back, it learns it from a peer.
	n5 := c.newNode(5)
	n5.peers = fmt.Sprintf("1=%s,5=%s", c.nodes[0].caddr, n5.caddr)
	admin(t, c.nodes[0], cluster.AdminRequest{Op: "add-node", Node: 5, Addr: n5.caddr})
	// What node 5 learns from node 1 names the nodes added since the
	// start too (node 4 may lead the metadata group).
	if s, err := status(c.nodes[0]); err != nil || s.Peers[4] != n4.caddr || s.Peers[5] != n5.caddr {
		t.Fatalf("node 1 names peers %v (%v), want nodes 4 and 5 among them", s.Peers, err)
	}
	c.start(n5)
	n2 := c.nodes[1]
	c.kill(n2)
	admin(t, c.nodes[0], cluster.AdminRequest{Op: "move-replica", Topic: "t", From: 2, To: 5})
	waitFor(t, "t's replica moved from node 2 to node 5", func() (bool, string) {
		g, err := topicStatus(n5, "t")
		return err == nil && slices.Equal(g.Replicas, []uint64{1, 4, 5}) && len(g.Learners) == 0 && len(g.Retiring) == 0, fmt.Sprintf("%+v %v", g, err)
	})
	admin(t, c.nodes[0], cluster.AdminRequest{Op: "remove-node", Node: 2})
	c.start(n2)
	refused(n2)
	produceBulk(t, n5, "t", 16, 100)
}
