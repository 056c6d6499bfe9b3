package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
)

// leaderOf waits until a running node leads topic's group in every running
// node's view and returns it.
func (c *testCluster) leaderOf(topic string) *testNode {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var lead uint64
		agree := true
		for _, tn := range c.nodes {
			if tn.n == nil {
				continue
			}
			tn.n.tmu.RLock()
			l := tn.n.leads[topic]
			tn.n.tmu.RUnlock()
			if l == 0 || lead != 0 && l != lead {
				agree = false
			}
			lead = l
		}
		if agree && lead != 0 && c.nodes[lead].n != nil {
			return c.nodes[lead]
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no agreed leader of %q", topic)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A producer that pipelines batches through a follower keeps their order
// in the log when the leader dies with all of them in flight: the
// follower proposes them again to the next leader in the order it first
// proposed them, and each is stored once.
func TestReproposeOrderAfterLeaderDies(t *testing.T) {
	// A long election timeout (1 s) so that every batch is proposed to the
	// dead leader before the others elect a new one.
	c := newTestClusterTick(t, 3, 100*time.Millisecond)
	if err := c.nodes[1].n.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := produce(ctx, c.nodes[1].n, "t", []byte("first")); err != nil {
		t.Fatal(err)
	}
	lead := c.leaderOf("t")
	var via *testNode
	for _, tn := range c.nodes {
		if tn != lead {
			via = tn
			break
		}
	}
	// Batches over half the proposal size limit, so each is a proposal of
	// its own (a proposal keeps its batches' order whatever happens).
	const k = 16
	pad := make([]byte, 600<<10)
	batches := make([][]byte, k)
	for i := range batches {
		copy(pad, fmt.Sprintf("batch-%02d", i))
		b, err := record.AppendBatch(nil, pad)
		if err != nil {
			t.Fatal(err)
		}
		batches[i] = b
	}
	c.stop(lead)
	ps := make([]engine.Pending, k)
	for i, b := range batches {
		p, err := via.n.Enqueue(ctx, "t", b)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	var prev uint64
	for i, p := range ps {
		off, err := p.Wait()
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if i > 0 && off <= prev {
			t.Errorf("batch %d stored at offset %d, before batch %d (offset %d): the pipeline's order was lost", i, off, i-1, prev)
		}
		prev = off
	}
	c.waitSame("t", uint64(k+1))
	_, end, err := via.e.Offsets("t")
	if err != nil {
		t.Fatal(err)
	}
	if end != k+1 {
		t.Errorf("log ends at %d, want %d (each batch once)", end, k+1)
	}
	for off := uint64(1); off < end; off++ {
		if m := messageAt(t, via.e, "t", off); string(m[:len("batch-00")]) != fmt.Sprintf("batch-%02d", off-1) {
			t.Errorf("offset %d holds %q, want batch-%02d", off, m[:len("batch-00")], off-1)
		}
	}
}
