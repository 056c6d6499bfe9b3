package cluster

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
)

// A produce forwarded to the leader while it hands its leadership over is
// not lost when the handover fails: the leader keeps it until the
// handover ended and then appends it, so it is acknowledged (before, Raft
// dropped it and the produce failed at the proposal timeout, with the
// message not stored), and stored once, at the next offset.
func TestForwardedProposalKeptDuringFailedHandover(t *testing.T) {
	c := newTestClusterTick(t, 3, 100*time.Millisecond) // a handover is given up after 1 s
	c.topicWithOne()
	lead := c.leaderOf("t")
	fwd := c.followerOf(lead)
	var gone *testNode
	for _, tn := range c.nodes {
		if tn != lead && tn != fwd {
			gone = tn
		}
	}
	c.stop(gone)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := lead.n.TransferLeader(ctx, "t", gone.id); err != nil {
		t.Fatal(err)
	}
	var transferee uint64
	onLoop(lead.n, func() { transferee = lead.n.groups[lead.n.topics["t"].Group].rn.BasicStatus().LeadTransferee })
	if transferee != gone.id {
		t.Fatalf("the leader hands over to %d, want %d", transferee, gone.id)
	}
	off, err := produce(ctx, fwd.n, "t", []byte("m1"))
	if err != nil {
		t.Fatalf("produce forwarded during the handover: %v", err)
	}
	if off != 1 {
		t.Fatalf("stored at %d, want 1", off)
	}
	var state raft.StateType
	onLoop(lead.n, func() { state = lead.n.groups[lead.n.topics["t"].Group].state })
	if state != raft.StateLeader {
		t.Fatalf("the leader is %v after the failed handover", state)
	}
	c.waitSame("t", 2)
	if _, end, _ := fwd.e.Offsets("t"); end != 2 {
		t.Fatalf("end %d, want 2 (the message stored once)", end)
	}
	if got := messageAt(t, lead.e, "t", 1); string(got) != "m1" {
		t.Fatalf("offset 1 holds %q", got)
	}
}
