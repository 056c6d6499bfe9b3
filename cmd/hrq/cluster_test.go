package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/cluster"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
)

// hrq cluster status shows every node, and per topic its leader, term and
// each replica's end offset and lag, from the nodes' cluster listeners.
func TestClusterStatus(t *testing.T) {
	nodes, peers := openNodes(t, 0)
	if err := nodes[1].CreateTopic("events"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		b, _ := record.AppendBatch(nil, []byte(fmt.Sprint(i)))
		p, err := nodes[2].Enqueue(context.Background(), "events", b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	list := fmt.Sprintf("1=%s,2=%s,3=%s", peers[1], peers[2], peers[3])
	want := regexp.MustCompile(`(?m)^events\s+[123]\s+\d+\s+\d+\s+1:5/0 2:5/0 3:5/0$`)
	var out string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out = mustHRQ(t, "", nil, "cluster", "status", "--peers", list)
		if want.MatchString(out) && strings.Count(out, "\n1 ") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hrq cluster status never showed every replica at end 5, lag 0:\n%s", out)
		}
	}
	for _, line := range []string{"NODE", "TOPIC"} {
		if !strings.Contains(out, line) {
			t.Fatalf("no %s header:\n%s", line, out)
		}
	}
	r := hrq(t, "", nil, "cluster", "status")
	if r.code != exitUsage {
		t.Fatalf("without --peers: %v", r)
	}
}

// openNodes starts a cluster of three nodes in this process, with rf
// replicas per topic (0: the default).
func openNodes(t *testing.T, rf int) (map[uint64]*cluster.Node, map[uint64]string) {
	t.Helper()
	peers := map[uint64]string{}
	lns := map[uint64]net.Listener{}
	for id := uint64(1); id <= 3; id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id], peers[id] = ln, ln.Addr().String()
	}
	nodes := map[uint64]*cluster.Node{}
	for id, ln := range lns {
		e, err := engine.Open(engine.Options{Volumes: []string{filepath.Join(t.TempDir(), "data")}})
		if err != nil {
			t.Fatal(err)
		}
		n, err := cluster.Open(cluster.Config{NodeID: id, Peers: peers, Listener: ln, Dir: filepath.Join(t.TempDir(), "cluster"), Engine: e, TickInterval: 20 * time.Millisecond, ReplicationFactor: rf})
		if err != nil {
			t.Fatal(err)
		}
		nodes[id] = n
		t.Cleanup(func() { n.Close(); e.Close() })
	}
	return nodes, peers
}

// hrq cluster move-replica moves a topic's replica to a node that had
// none (the status shows the new replica set, caught up), and remove-node
// refuses a node that still holds a replica, naming the topic, and
// removes one that holds none.
func TestClusterMoveReplicaAndRemoveNode(t *testing.T) {
	nodes, peers := openNodes(t, 2)
	if err := nodes[1].CreateTopic("events"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		b, _ := record.AppendBatch(nil, []byte(fmt.Sprint(i)))
		p, err := nodes[2].Enqueue(context.Background(), "events", b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	list := fmt.Sprintf("1=%s,2=%s,3=%s", peers[1], peers[2], peers[3])
	// The first topic is on nodes 1 and 2 (placement starts at node 1).
	mustHRQ(t, "", nil, "cluster", "move-replica", "events", "1", "3", "--peers", list)
	want := regexp.MustCompile(`(?m)^events\s+[23]\s+\d+\s+\d+\s+2:5/0 3:5/0$`)
	var out string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out = mustHRQ(t, "", nil, "cluster", "status", "--peers", list)
		if want.MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hrq cluster status never showed the replicas on nodes 2 and 3, caught up:\n%s", out)
		}
	}
	r := hrq(t, "", nil, "cluster", "remove-node", "2", "--peers", list)
	if r.code == 0 || !strings.Contains(r.stderr, "events") {
		t.Fatalf("remove-node of a node holding a replica: %+v", r)
	}
	mustHRQ(t, "", nil, "cluster", "remove-node", "1", "--peers", list)
	out = mustHRQ(t, "", nil, "cluster", "status", "--peers", list)
	if !regexp.MustCompile(`(?m)^2\s.*\s2,3$`).MatchString(out) {
		t.Fatalf("node 1 still a member:\n%s", out)
	}
}
