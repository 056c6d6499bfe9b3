package cluster

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
)

// onLoop runs f on node n's loop and waits for it.
func onLoop(n *Node, f func()) {
	done := make(chan struct{})
	n.doq <- func() { f(); close(done) }
	<-done
}

// An acknowledged message is never hidden by a leader that does not hold
// it: a replica still installing a snapshot (its Raft log caught up, its
// engine still fetching what the snapshot covers from a peer) is not
// handed the leadership back as the topic's preferred replica (it could
// neither serve the messages below the snapshot nor answer a produce
// before its fetch ended), nor promoted by a replica move; once its
// snapshot is installed it is.
func TestCatchingReplicaNotGivenLeadership(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	c.topicWithOne()
	var ti *TopicInfo
	onLoop(c.nodes[1].n, func() { ti = c.nodes[1].n.topics["t"] })
	pref := c.nodes[ti.Preferred]
	var other *testNode
	for _, tn := range c.nodes {
		if tn != pref {
			other = tn
			break
		}
	}
	// The preferred replica says it is installing a snapshot, as it does
	// while it fetches one's part from a peer.
	var pg *group
	onLoop(pref.n, func() { pg = pref.n.groups[ti.Group] })
	pg.snap.catching.Add(1)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		known := false
		onLoop(other.n, func() { known = other.n.peerCatching(pref.id, ti.Group) })
		if known {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica's liveness frames never said it is catching up")
		}
	}
	if err := pref.n.TransferLeader(ctx, "t", other.id); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); c.leaderOf("t") != other; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("leadership did not move")
		}
	}
	// Five rounds of the leader's balancing (every 20 ticks), counted in
	// its own ticks: the replica catching up is never made leader.
	var start int
	onLoop(other.n, func() { start = other.n.q.ticks })
	for {
		var ticks int
		var lead uint64
		onLoop(other.n, func() { ticks, lead = other.n.q.ticks, other.n.groups[ti.Group].lead })
		if lead == pref.id {
			t.Fatalf("leadership handed to node %d while it installs a snapshot", pref.id)
		}
		if ticks-start >= 100 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Installed: the leadership goes back to the preferred replica.
	pg.snap.catching.Add(-1)
	for deadline := time.Now().Add(30 * time.Second); c.leaderOf("t") != pref; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("leadership never went back to the preferred replica once it had caught up")
		}
	}
}

// An acknowledged message is never hidden by a leader that does not hold
// it, when the leader dies during a replica's snapshot fetch too: the
// replica still installing a snapshot does not ask for votes (its Raft
// log is as long as the others', so they would grant them), and the
// replica that holds the messages is elected. The catching replica here
// campaigns as often as it can, so without the rule it wins nearly always.
func TestCatchingReplicaDoesNotCampaign(t *testing.T) {
	c := newTestCluster(t, 3)
	c.topicWithOne()
	lead := c.leaderOf("t")
	var ti *TopicInfo
	onLoop(lead.n, func() { ti = lead.n.topics["t"] })
	catching := c.followerOf(lead)
	var holder *testNode
	for _, tn := range c.nodes {
		if tn != lead && tn != catching {
			holder = tn
		}
	}
	var cg *group
	onLoop(catching.n, func() { cg = catching.n.groups[ti.Group] })
	cg.snap.catching.Add(1)
	c.stop(lead)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var won bool
		onLoop(catching.n, func() {
			won = cg.state == raft.StateLeader
			if !won {
				cg.rn.Campaign()
				catching.n.touched[cg.id] = cg
			}
		})
		if won {
			t.Fatalf("node %d, installing a snapshot, was elected leader", catching.id)
		}
		var held bool
		onLoop(holder.n, func() { held = holder.n.groups[ti.Group].state == raft.StateLeader })
		if held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader elected among the two live replicas")
		}
	}
	// Installed: it may lead again (a handover to it now succeeds, once it
	// follows the new leader: its last campaign may have left it a
	// pre-candidate, which ignores a handover).
	cg.snap.catching.Add(-1)
	for deadline := time.Now().Add(30 * time.Second); c.leaderOf("t") != catching; time.Sleep(50 * time.Millisecond) {
		var follows bool
		onLoop(catching.n, func() { follows = cg.state == raft.StateFollower && cg.lead == holder.id })
		if follows {
			if err := holder.n.TransferLeader(context.Background(), "t", catching.id); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("leadership never went to the replica once it had caught up")
		}
	}
}
