package cluster

import (
	"errors"
	"fmt"
	"slices"

	"github.com/haraqa/haraqa/engine"
	"go.etcd.io/raft/v3"
)

// A node's proposals of a group that are not known applied here are kept
// in the order they were first proposed (ids grow in that order): those
// Raft took (inflight) and those it dropped for want of a leader (held).
// When the group's leader or term changes, every one of them is proposed
// again, in that order, before any newer proposal: a proposal forwarded to
// a leader that died, or appended by a leader deposed before it committed,
// is lost otherwise, and proposing them in another order would store a
// pipelining producer's batches out of order. A copy whose first copy also
// committed is skipped at apply (applyLoop), so each is stored once.

// proposeOrHold proposes data to group gid; when Raft drops it (no leader
// known, e.g. during an election) it is held and retried every tick until
// its waiter expires. Behind a held proposal of the group, it is held too.
func (n *Node) proposeOrHold(gid, id uint64, data []byte) {
	g := n.groups[gid]
	if g == nil {
		n.finish(id, nil, fmt.Errorf("%w: group %d is gone", engine.ErrTopicNotFound, gid))
		return
	}
	n.touched[gid] = g
	n.wakeGroup(g)
	n.followLeader(g)
	if len(g.held) > 0 {
		g.held = append(g.held, held{gid, id, data})
		return
	}
	n.proposeNow(g, held{gid, id, data})
}

// proposeNow proposes h, holding it when Raft drops it.
func (n *Node) proposeNow(g *group, h held) {
	if err := g.rn.Propose(h.data); err != nil {
		if !errors.Is(err, raft.ErrProposalDropped) {
			n.finish(h.id, nil, unavailable("cluster: group %d: %v", g.id, err))
			return
		}
		g.held = append(g.held, h)
		return
	}
	g.inflight = append(g.inflight, h)
}

// followLeader proposes the group's inflight and held proposals again, in
// the order first proposed, when the group has a leader other than the one
// (or in another term than the one) they were proposed to.
func (n *Node) followLeader(g *group) {
	st := g.rn.BasicStatus()
	lead, term := st.Lead, st.GetTerm()
	if lead == raft.None || lead == g.pLead && term == g.pTerm {
		return
	}
	g.pLead, g.pTerm = lead, term
	if len(g.inflight) == 0 {
		return
	}
	g.prune(n)
	n.touched[g.id] = g // its Ready carries them (ready() defers this call past its own round)
	n.wakeGroup(g)
	n.wake()
	all := append(g.inflight, g.held...)
	slices.SortStableFunc(all, func(a, b held) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	g.inflight, g.held = nil, nil
	for _, h := range all {
		if len(g.held) > 0 {
			g.held = append(g.held, h)
		} else {
			n.proposeNow(g, h)
		}
	}
}

func (n *Node) waiting(id uint64) bool {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	_, ok := n.waiters[id]
	return ok
}

// prune forgets proposals that were answered.
func (g *group) prune(n *Node) {
	keep := func(hs []held) []held {
		return slices.DeleteFunc(hs, func(h held) bool { return !n.waiting(h.id) })
	}
	g.inflight, g.held = keep(g.inflight), keep(g.held)
}

// retryHeld proposes every group's held proposals again, in order.
func (n *Node) retryHeld() {
	for _, g := range n.groups {
		if len(g.held) == 0 {
			continue
		}
		n.wakeGroup(g)
		n.followLeader(g)
		hs := g.held
		g.held = nil
		for _, h := range hs {
			if !n.waiting(h.id) {
				continue
			}
			if len(g.held) > 0 {
				g.held = append(g.held, h)
			} else {
				n.proposeNow(g, h)
			}
		}
		n.touched[g.id] = g
	}
}
