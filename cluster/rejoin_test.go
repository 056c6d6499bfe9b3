//go:build unix

package cluster_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A node that lost its Raft log forgot the votes it gave: it must not vote
// before it has caught up with a leader, or it could elect a second leader
// in a term it already voted in. Here only its Raft log file is lost (its
// catalog and segments stay, so it runs the topic's group at once): with
// the topic's leader down, the survivor campaigns and only the node that
// lost its log could give it a majority; it must not. Once the third node
// is back, the node catches up and votes again, and every replica holds
// every acknowledged message, byte for byte the same.
func TestClusterWipedNodeDoesNotVote(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3)
	c.createTopic("t")
	l := c.startLoad("t", 2)
	for wait := time.Now().Add(30 * time.Second); l.count() < 100; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("only %d acknowledged", l.count())
		}
	}
	l.finish()
	c.converge("t", l.count())
	// Kill the topic's leader, and another node whose Raft log is then
	// lost: the survivor and that node are left.
	lead, _ := c.leaderOf("t")
	n1 := c.byID(lead%3 + 1)     // survivor
	n2 := c.byID((lead+1)%3 + 1) // loses its Raft log
	n3 := c.byID(lead)           // down
	before, err := status(n1)
	if err != nil {
		t.Fatal(err)
	}
	terms := map[uint64]uint64{before.Meta.Group: before.Meta.Term}
	for _, g := range before.Topics {
		terms[g.Group] = g.Term
	}
	c.kill(n3)
	c.kill(n2)
	if err := os.Remove(filepath.Join(n2.dir, "data", "cluster", "wal")); err != nil {
		t.Fatal(err)
	}
	c.start(n2)
	// Many election timeouts (-raft-tick 50ms: 0.5 s each): the survivor
	// campaigns for the topic, and only the wiped node could give it a
	// majority. A vote would show as a higher term; a leader of before may
	// stay (it was elected with votes that were not forgotten).
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for _, p := range []*proc{n1, n2} {
			s, err := status(p)
			if err != nil {
				continue
			}
			for _, g := range append(s.Topics, s.Meta) {
				if g.Term > terms[g.Group] {
					t.Fatalf("node %d: group %d (%q) moved from term %d to %d with a node that lost its log and without the third (role %s): that node voted",
						p.id, g.Group, g.Topic, terms[g.Group], g.Term, g.Role)
				}
			}
		}
	}
	n2.mu.Lock()
	warned := strings.Contains(n2.logs.String(), "it forgot its votes")
	n2.mu.Unlock()
	if !warned {
		t.Fatalf("node %d did not see that it rejoined with a lost log", n2.id)
	}
	c.start(n3)
	// Produce again: the node must take part in the topic's group.
	l2 := c.startLoad("t", 2)
	for wait := time.Now().Add(30 * time.Second); l2.count() < 100; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("only %d acknowledged after the third node came back", l2.count())
		}
	}
	l2.finish()
	logs := c.converge("t", l.count()+l2.count())
	c.check(l, logs)
	c.check(l2, logs)
	for wait := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n2.mu.Lock()
		back := strings.Contains(n2.logs.String(), "votes again")
		n2.mu.Unlock()
		if back {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("node %d never voted again after catching up", n2.id)
		}
	}
}

// A node that lost its Raft log must not vote before it has caught up
// with a group's leader even when it is restarted in between: the first
// start after the loss writes to its Raft log (it hears the leaders of
// other groups), so the restart finds a log that is not empty, but the
// votes and entries it gave before the loss are still forgotten. Here the
// topic's leader is down, the survivor campaigns, and only the node that
// lost its log (restarted since) could give it a majority; it must not,
// or an acknowledged message the survivor lacks could be lost and two
// leaders could be elected in one term.
func TestClusterWipedNodeRestartedDoesNotVote(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3)
	c.createTopic("a") // preferred leader: node 1
	c.createTopic("b") // preferred leader: node 2
	la, lb := c.startLoad("a", 1), c.startLoad("b", 1)
	for wait := time.Now().Add(30 * time.Second); la.count() < 50 || lb.count() < 50; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("only %d and %d acknowledged", la.count(), lb.count())
		}
	}
	la.finish()
	lb.finish()
	c.converge("a", la.count())
	c.converge("b", lb.count())
	// Leadership drifts to the preferred replicas: a on node 1, b on 2.
	for wait := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		a, _ := c.leaderOf("a")
		b, _ := c.leaderOf("b")
		if a == 1 && b == 2 {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("leaders a=%d b=%d, want 1 and 2", a, b)
		}
	}
	n1, n2, n3 := c.byID(2), c.byID(3), c.byID(1) // survivor (leads b), loses its log, down (leads a)
	before, err := status(n1)
	if err != nil {
		t.Fatal(err)
	}
	var termA, groupA uint64
	for _, g := range before.Topics {
		if g.Topic == "a" {
			termA, groupA = g.Term, g.Group
		}
	}
	c.kill(n3)
	c.kill(n2)
	wal := filepath.Join(n2.dir, "data", "cluster", "wal")
	if err := os.Remove(wal); err != nil {
		t.Fatal(err)
	}
	c.start(n2)
	// It hears the survivor (leader of b): its Raft log is written.
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if st, err := os.Stat(wal); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(wait) {
			t.Fatal("the restarted node wrote nothing to its Raft log")
		}
	}
	time.Sleep(time.Second)
	c.kill(n2)
	c.start(n2)
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for _, p := range []*proc{n1, n2} {
			s, err := status(p)
			if err != nil {
				continue
			}
			for _, g := range s.Topics {
				if g.Group == groupA && g.Term > termA {
					t.Fatalf("node %d: topic a moved from term %d to %d without its leader's node, with a node that lost its log and was restarted (role %s): that node voted",
						p.id, termA, g.Term, g.Role)
				}
			}
		}
	}
	c.start(n3)
	l2 := c.startLoad("a", 1)
	for wait := time.Now().Add(30 * time.Second); l2.count() < 50; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("only %d acknowledged after the third node came back", l2.count())
		}
	}
	l2.finish()
	logs := c.converge("a", la.count()+l2.count())
	c.check(la, logs)
	c.check(l2, logs)
	// Caught up in every group: the guard ends (and a restart votes).
	for wait := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n2.mu.Lock()
		ended := strings.Contains(n2.logs.String(), "the guard ends")
		n2.mu.Unlock()
		if ended {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("node %d kept its rejoin guard after catching up", n2.id)
		}
	}
	if _, err := os.Stat(filepath.Join(n2.dir, "data", "cluster", "rejoin")); !os.IsNotExist(err) {
		t.Fatalf("rejoin guard file still there: %v", err)
	}
}
