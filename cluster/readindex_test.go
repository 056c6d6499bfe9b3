package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
)

// An acknowledged message is never hidden from a client that asks where a
// topic ends: a replica that has not applied the last acknowledged batches
// yet (here a follower whose apply is held while the leader and the other
// follower commit and acknowledge two more) must not answer an end below
// them. It passes a read barrier first and answers once it has applied
// everything committed when it was asked.
func TestOffsetsOnReplicaBehindCoverAcknowledged(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	c.topicWithOne()
	lead := c.leaderOf("t")
	behind := c.followerOf(lead)
	release := holdApply(t, behind)
	var acked uint64
	for _, m := range []string{"m1", "m2"} {
		off, err := produce(ctx, lead.n, "t", []byte(m))
		if err != nil {
			t.Fatal(err)
		}
		acked = off
	}
	if _, end, _ := behind.e.Offsets("t"); end > acked {
		t.Fatalf("held replica's engine ends at %d, past the acknowledged offset %d: the hold did not hold", end, acked)
	}
	type answer struct {
		end uint64
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		_, end, err := behind.n.LatestOffsets("t")
		ch <- answer{end, err}
	}()
	select {
	case a := <-ch:
		if a.err != nil || a.end <= acked {
			t.Fatalf("offsets on the replica behind, offset %d acknowledged: end %d, %v (want past it)", acked, a.end, a.err)
		}
	case <-time.After(300 * time.Millisecond):
		release()
		a := <-ch
		if a.err != nil || a.end <= acked {
			t.Fatalf("offsets on the replica behind, offset %d acknowledged: end %d, %v (want past it)", acked, a.end, a.err)
		}
	}
	// The leader answers too (its barrier is a heartbeat round).
	if _, end, err := lead.n.LatestOffsets("t"); err != nil || end <= acked {
		t.Fatalf("offsets on the leader: end %d, %v (want past %d)", end, err, acked)
	}
}

// Asking where a topic ends never hangs: a replica cut off from a
// majority cannot confirm its end and says so with a retriable error
// within the read bound (behindWait); a consume past its end likewise.
func TestOffsetsWithoutQuorumRetriable(t *testing.T) {
	c := newTestCluster(t, 3)
	c.topicWithOne()
	alone := c.nodes[1]
	c.stop(c.nodes[2])
	c.stop(c.nodes[3])
	bound := alone.n.behindWait()
	start := time.Now()
	_, end, err := alone.n.LatestOffsets("t")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("offsets without a quorum answered end %d, want a retriable error", end)
	}
	if !errors.Is(err, logsvc.ErrNotLeader) || !errors.Is(err, engine.ErrStorage) {
		t.Fatalf("offsets without a quorum: %v, want a retriable not-leader error", err)
	}
	if took > bound+5*time.Second {
		t.Fatalf("offsets without a quorum took %v, bound %v", took, bound)
	}
	var res engine.ReadResult
	defer res.Release()
	start = time.Now()
	err = alone.n.Read("t", 5, 1, 1<<20, &res)
	took = time.Since(start)
	if !errors.Is(err, logsvc.ErrNotLeader) || !errors.Is(err, engine.ErrStorage) {
		t.Fatalf("read past the end without a quorum: %v, want a retriable not-leader error", err)
	}
	if took > bound+5*time.Second {
		t.Fatalf("read past the end without a quorum took %v, bound %v", took, bound)
	}
}

// quietOn reports whether topic's group is quiet on tn (asked on its loop).
func quietOn(tn *testNode, topic string) bool {
	ch := make(chan bool, 1)
	tn.n.doq <- func() {
		g := tn.n.groups[tn.n.topics[topic].Group]
		ch <- g != nil && g.quiet
	}
	return <-ch
}

// waitQuietGroup waits until topic's group is quiet on every node.
func (c *testCluster) waitQuietGroup(topic string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		all := true
		for _, tn := range c.nodes {
			all = all && quietOn(tn, topic)
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("topic %q's group not quiet on every node within 30s", topic)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Asking where an idle topic ends works on an idle (quiet) group, whose
// leader sends no heartbeats: the read barrier wakes it for the heartbeat
// round that confirms the leader, on the leader and on a follower, and
// the group goes quiet again afterwards.
func TestOffsetsOnQuietGroup(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	if err := c.nodes[1].n.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	var acked uint64
	for _, m := range []string{"m0", "m1"} {
		off, err := produce(ctx, c.nodes[1].n, "t", []byte(m))
		if err != nil {
			t.Fatal(err)
		}
		acked = off
	}
	c.waitSame("t", acked+1)
	c.waitQuietGroup("t")
	lead := c.leaderOf("t")
	for _, tn := range c.nodes {
		_, end, err := tn.n.LatestOffsets("t")
		if err != nil || end != acked+1 {
			t.Fatalf("offsets on quiet node %d (leader %d): end %d, %v (want %d)", tn.id, lead.id, end, err, acked+1)
		}
	}
	c.waitQuietGroup("t")
}

// An acknowledged message is never hidden after a leader change: a
// replica that becomes the topic's leader before it applied the last
// acknowledged batches (its apply held) does not answer an end below
// them; it answers once it has applied up to its read index.
func TestOffsetsOnNewLeaderBeforeApplyCoverAcknowledged(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	c.topicWithOne()
	lead := c.leaderOf("t")
	next := c.followerOf(lead)
	gate := make(chan struct{})
	next.n.rix.gate.Store(&gate)
	held := true
	release := func() {
		if held {
			held = false
			close(gate)
		}
	}
	defer release()
	var acked uint64
	for _, m := range []string{"m1", "m2"} {
		off, err := produce(ctx, lead.n, "t", []byte(m))
		if err != nil {
			t.Fatal(err)
		}
		acked = off
	}
	// A handover gives up after an election timeout (10 ticks) when the
	// transferee has not taken over, which a loaded machine can make it
	// miss: ask again every half second.
	deadline := time.Now().Add(20 * time.Second)
	var asked time.Time
	for ; ; time.Sleep(5 * time.Millisecond) {
		if time.Since(asked) > 500*time.Millisecond {
			if err := lead.n.TransferLeader(ctx, "t", next.id); err != nil {
				t.Fatal(err)
			}
			asked = time.Now()
		}
		ch := make(chan bool, 1)
		next.n.doq <- func() { ch <- next.n.groups[next.n.topics["t"].Group].lead == next.id }
		if <-ch {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d did not take the leadership of t", next.id)
		}
	}
	if _, end, _ := next.e.Offsets("t"); end > acked {
		t.Fatalf("new leader's engine ends at %d, past the acknowledged offset %d: the hold did not hold", end, acked)
	}
	type answer struct {
		end uint64
		err error
	}
	ans := make(chan answer, 1)
	go func() {
		_, end, err := next.n.LatestOffsets("t")
		ans <- answer{end, err}
	}()
	var a answer
	select {
	case a = <-ans:
	case <-time.After(300 * time.Millisecond):
		release()
		a = <-ans
	}
	if a.err != nil || a.end <= acked {
		t.Fatalf("offsets on the new leader, offset %d acknowledged: end %d, %v (want past it)", acked, a.end, a.err)
	}
}
