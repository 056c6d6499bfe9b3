package cluster

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// A node removed from the cluster (DESIGN.md "Replication", Membership)
// stops serving as a member: it logs it, sends nothing more to its peers
// (so that its groups, which Raft no longer counts, wake nobody), and
// refuses every request for a topic or an admin command with an error
// that sends clients elsewhere; it stays up, idle, until the operator
// stops it (README runbook). It knows it is removed when it applies its
// own removal from the metadata log, or, when it was down meanwhile and
// its metadata group finds no leader, from a peer whose catalog is newer
// and no longer lists it. The file cluster/removed records it across
// restarts; wiping the data directory (a new node) is the way back.

// removal is a node's removal state.
type removal struct {
	removed    atomic.Bool
	asking     atomic.Bool // a peer is being asked (askRemoved)
	leaderless int         // loop: rounds of snapshotTick's cadence the metadata group had no leader
}

const removedFile = "removed"

// loadRemoved marks the node removed if an earlier run recorded it (Open).
func (n *Node) loadRemoved() {
	if _, err := os.Stat(filepath.Join(n.cfg.Dir, removedFile)); err == nil {
		n.rm.removed.Store(true)
		n.log.Error("cluster: this node was removed from the cluster; it serves nothing (stop it; to use it again, wipe its data directory and add it as a new node)", "node", n.cfg.NodeID)
	}
}

// markRemoved makes this node a removed one (loop goroutine, or Open).
func (n *Node) markRemoved(why string) {
	if n.rm.removed.Swap(true) {
		return
	}
	if n.tr != nil {
		n.tr.mute.Store(true)
	}
	n.log.Error("cluster: this node was removed from the cluster; it stops serving as a member and refuses every request (stop it; to use it again, wipe its data directory and add it as a new node)",
		"node", n.cfg.NodeID, "how", why)
	f, err := os.Create(filepath.Join(n.cfg.Dir, removedFile))
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		if d, derr := os.Open(n.cfg.Dir); derr == nil {
			d.Sync()
			d.Close()
		}
	}
	if err != nil {
		n.log.Warn("cluster: recording the removal failed; a restart serves again until it learns it anew", "err", err)
	}
}

// removedErr is the answer of a removed node to every request.
func (n *Node) removedErr() error {
	return n.notLeader(0, "cluster: node %d was removed from the cluster; connect to another node", n.cfg.NodeID)
}

// errIfRemoved returns removedErr once the node is removed.
func (n *Node) errIfRemoved() error {
	if n.rm.removed.Load() {
		return n.removedErr()
	}
	return nil
}

// removedTick (loop, every 10 ticks) asks the peers whether this node was
// removed while it was down, once its metadata group has had no leader
// for three rounds: a removed node's group never finds one again.
func (n *Node) removedTick() {
	if n.rm.removed.Load() {
		return
	}
	g := n.groups[metaGroup]
	if g == nil || g.lead != 0 {
		n.rm.leaderless = 0
		return
	}
	n.rm.leaderless++
	// Only a node that was a member by its own catalog can have been
	// removed (a joining node is not one yet).
	if n.rm.leaderless < 3 || !slices.Contains(n.cat.members(), n.cfg.NodeID) || n.rm.asking.Swap(true) {
		return
	}
	applied := n.cat.Applied
	peers := map[uint64]string{}
	n.tr.ids.Range(func(k, v any) bool {
		if id := k.(uint64); id != n.cfg.NodeID {
			peers[id] = v.(string)
		}
		return true
	})
	go func() {
		defer n.rm.asking.Store(false)
		for id, addr := range peers {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s, err := FetchStatus(ctx, addr)
			cancel()
			if err != nil || s.Meta.Commit <= applied || len(s.Members) == 0 || slices.Contains(s.Members, n.cfg.NodeID) {
				continue
			}
			select {
			case n.doq <- func() { n.markRemoved("node " + strconv.FormatUint(id, 10) + "'s catalog no longer lists it") }:
			case <-n.done:
			}
			return
		}
	}()
}
