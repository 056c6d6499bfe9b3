//go:build unix

package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// A consumer group's dead-lettered messages in a cluster go through the
// dead-letter topic's own Raft group, led by another node than the
// group's topic: each message the member gave up on is in the dead-letter
// topic, once, on every replica of it (byte for byte the same), and the
// group's commit covers it on every replica of the group's topic. Before,
// a group naming a dead-letter topic was refused in a cluster.
func TestClusterDeadLetter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3)
	c.createTopic("src")
	c.createTopic("dlq")
	leads := c.waitLeaders("src", "dlq")
	if leads["src"] == leads["dlq"] {
		t.Fatalf("both topics led by node %d; the test wants them apart (placement is round-robin)", leads["src"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.Dial(ctx, c.seedList())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 6
	for i := range n {
		if _, err := cl.Produce(ctx, "src", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// The member nacks every message; with one delivery allowed, the next
	// fetch dead-letters them.
	gc := client.NewGroupConsumer(cl, "g", "src", client.GroupMaxDeliveries(1), client.GroupDeadLetter("dlq"),
		client.GroupFetchMax(10), client.GroupWait(300*time.Millisecond))
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		var ferr error
		for m, err := range gc.Messages(cctx) {
			if err != nil {
				if cctx.Err() == nil && ferr == nil {
					ferr = err
				}
				continue
			}
			if err := m.Nack(0); err != nil && ferr == nil {
				ferr = err
			}
		}
		done <- ferr
	}()
	c.waitCommitted("src", "g", n)
	stop()
	if err := <-done; err != nil {
		t.Errorf("group consumer: %v", err)
	}
	gc.Close(ctx)
	logs := c.converge("dlq", n)
	for i, raw := range logs {
		if !bytes.Equal(raw, logs[0]) {
			t.Fatalf("node %d's dead-letter topic differs from node 1's", i+1)
		}
	}
	msgs := messages(t, logs[0])
	if len(msgs) != n {
		t.Fatalf("dead-letter topic holds %d messages, want %d: %v", len(msgs), n, msgs)
	}
	for i := range n {
		if msgs[uint64(i)] != fmt.Sprintf("m%d", i) {
			t.Errorf("dead-letter offset %d holds %q, want m%d", i, msgs[uint64(i)], i)
		}
	}
	d, err := cl.DescribeGroup(ctx, "g", "src")
	if err != nil || d.DeadLettered != n {
		t.Errorf("group: %d dead-lettered (%v), want %d", d.DeadLettered, err, n)
	}
}
