package cluster

import (
	pb "go.etcd.io/raft/v3/raftpb"

	"go.etcd.io/raft/v3"
)

// Proposals forwarded during a leadership handover.
//
// While a leader hands its leadership over (Raft's leader transfer), Raft
// drops every proposal it is given, without a word to a follower that
// forwarded one: that follower keeps it in flight and proposes it again
// only when the leader or term changes. When the handover fails (the
// transferee never answered: it died, or a partition), the leader stays,
// so nothing was proposed again: the produce waited for the proposal
// timeout, and a pipelining producer's later batch, forwarded after the
// handover ended, was stored before it. The leader therefore keeps the
// forwarded proposals that arrive during a handover, in arrival order,
// and hands them to Raft once the handover ended: as leader (it failed)
// Raft appends them; as follower (it succeeded) Raft forwards them to
// the new leader, behind which the proposer's own re-proposals on the
// leader change are skipped at apply as copies.

// holdForHandover keeps m, a proposal forwarded to this leader, while the
// group hands its leadership over, or behind proposals kept so (loop).
func (n *Node) holdForHandover(g *group, m *pb.Message) bool {
	if m.GetType() != pb.MsgProp {
		return false
	}
	if len(g.handover) == 0 {
		st := g.rn.BasicStatus()
		if st.RaftState != raft.StateLeader || st.LeadTransferee == raft.None {
			return false
		}
	}
	g.handover = append(g.handover, m)
	return true
}

// releaseHandover hands the group's kept proposals to Raft once its
// handover ended (loop).
func (n *Node) releaseHandover(g *group) {
	if len(g.handover) == 0 || g.rn.BasicStatus().LeadTransferee != raft.None {
		return
	}
	ms := g.handover
	g.handover = nil
	for _, m := range ms {
		g.rn.Step(m)
	}
	n.touched[g.id] = g
	n.wake()
}

// releaseHandovers runs releaseHandover on every group keeping proposals
// (loop, every tick: a failed handover ends at a tick).
func (n *Node) releaseHandovers() {
	for _, g := range n.groups {
		n.releaseHandover(g)
	}
}
