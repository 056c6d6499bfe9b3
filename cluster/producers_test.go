package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
)

// idemBatch is one message as batch seq of producer pid.
func idemBatch(t *testing.T, pid uint64, seq uint32, msg string) []byte {
	t.Helper()
	b, err := record.AppendBatch(nil, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	record.SetProducer(b, pid, seq)
	return b
}

func enqueueWait(ctx context.Context, n *Node, topic string, b []byte) (uint64, error) {
	p, err := n.Enqueue(ctx, topic, slices.Clone(b))
	if err != nil {
		return 0, err
	}
	return p.Wait()
}

// An idempotent producer's batch is stored once in a cluster whichever
// node its retries go through, even after a replica restarts (every
// replica rebuilds the producers' sequences from the replicated log), and
// a sequence gap is refused.
func TestIdempotentRetryStoredOnce(t *testing.T) {
	c := newTestCluster(t, 3)
	if err := c.nodes[1].n.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if !c.nodes[1].n.IdempotentProducers() {
		t.Fatal("a cluster node does not offer idempotent producers")
	}
	pid := c.nodes[2].n.NewProducerID()
	if pid == 0 {
		t.Fatal("NewProducerID returned 0")
	}
	b0, b1 := idemBatch(t, pid, 0, "zero"), idemBatch(t, pid, 1, "one")
	var first uint64
	for i, via := range []uint64{1, 2, 3, 1} {
		off, err := enqueueWait(ctx, c.nodes[via].n, "t", b0)
		if err != nil {
			t.Fatalf("sequence 0 through node %d: %v", via, err)
		}
		if i == 0 {
			first = off
		} else if off != first {
			t.Fatalf("sequence 0 retried through node %d stored at %d, first at %d", via, off, first)
		}
	}
	off1, err := enqueueWait(ctx, c.nodes[3].n, "t", b1)
	if err != nil || off1 != first+1 {
		t.Fatalf("sequence 1: offset %d, %v; want %d", off1, err, first+1)
	}
	if _, err := enqueueWait(ctx, c.nodes[2].n, "t", idemBatch(t, pid, 5, "gap")); !errors.Is(err, engine.ErrSequence) {
		t.Fatalf("sequence 5 after 1: %v, want ErrSequence", err)
	}
	// A restarted replica rebuilds the table from the log: its answer to
	// a retry is the first copy's offset too.
	c.stop(c.nodes[2])
	c.start(c.nodes[2], nil)
	for {
		off, err := enqueueWait(ctx, c.nodes[2].n, "t", b1)
		if err == nil {
			if off != off1 {
				t.Fatalf("sequence 1 retried through the restarted node stored at %d, first at %d", off, off1)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("retry through the restarted node: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.waitSame("t", 2)
	for id, tn := range c.nodes {
		if _, end, _ := tn.e.Offsets("t"); end != 2 {
			t.Fatalf("node %d holds %d messages, want 2 (each batch once)", id, end)
		}
	}
}
