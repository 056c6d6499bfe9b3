package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// A node that lost its Raft log (a wiped disk) also forgot its votes: it
// could vote a second time in a term it already voted in, and two leaders
// could be elected in one term (Raft assumes a vote is never forgotten).
// The guard (DESIGN.md "Replication", Wiped replica): a node whose Raft log
// was empty at start asks its peers for their status; if one has a history
// (its metadata group committed past the start, or it knows topics), this
// node rejoins a running cluster with no memory of its votes, and in each
// of its groups it neither votes nor campaigns (vote and pre-vote requests
// in and out, and leadership transfers to it, are dropped) until it has
// heard that group's leader and its log holds everything the leader told
// it was committed. Until a peer answers it does not vote at all; a peer
// that answers with no history means a new cluster: it votes at once.
//
// The guard outlives a restart: a file (rejoinFile) in the node's cluster
// directory says the log was lost ("unknown" until a peer answered, then
// "wiped"); a node that finds it at start keeps the guard (its Raft log is
// no longer empty, but the votes it forgot are still forgotten), and each
// group catches up again. The file goes once every group it runs caught
// up.

const (
	rejoinNone    = 0 // a node with its log: votes as Raft says
	rejoinUnknown = 1 // empty log, no peer answered yet: no votes
	rejoinWiped   = 2 // empty log in a cluster with a history: per group
)

// rejoinState is a group's part of the guard (loop-owned).
type rejoinState struct {
	done   bool   // caught up: votes again
	commit uint64 // highest commit index the leader announced
}

const rejoinFile = "rejoin"

// startRejoin sets up the guard at Open (before the loop runs).
func (n *Node) startRejoin() error {
	b, err := os.ReadFile(filepath.Join(n.cfg.Dir, rejoinFile))
	switch {
	case err == nil && string(b) == "wiped":
		n.rejoin.Store(rejoinWiped)
		n.log.Warn("cluster: this node lost its raft log before its last start and had not caught up: in each group it votes only once it has caught up with the group's leader")
		return nil
	case err == nil:
		// A peer had not answered yet: ask again.
	case !errors.Is(err, os.ErrNotExist):
		return err
	case !n.wal.fresh:
		return nil
	default:
		if err := n.writeRejoin("unknown"); err != nil {
			return err
		}
	}
	n.rejoin.Store(rejoinUnknown)
	go n.probeHistory()
	return nil
}

// writeRejoin records the guard's state durably (rejoinFile).
func (n *Node) writeRejoin(state string) error {
	path := filepath.Join(n.cfg.Dir, rejoinFile)
	tmp := path + ".new"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.WriteString(state)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return err
	}
	return syncDir(n.cfg.Dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// rejoinTick ends the guard once every group the node runs caught up
// (loop): the file goes, and a restart votes as Raft says.
func (n *Node) rejoinTick() {
	if n.rejoin.Load() != rejoinWiped {
		return
	}
	for _, g := range n.groups {
		if n.quarantined(g) {
			return
		}
	}
	// The metadata log applied to where its leader said: the node runs
	// every group it is a replica of (the loss may have taken the catalog).
	if g := n.groups[metaGroup]; g == nil || n.cat.Applied < g.rj.commit {
		return
	}
	path := filepath.Join(n.cfg.Dir, rejoinFile)
	if _, err := os.Stat(path); err != nil {
		return // removed already
	}
	// Every group's hard state since the loss is in the Raft log, synced.
	if err := n.wal.flush(true); err != nil {
		return
	}
	if err := os.Remove(path); err != nil {
		n.log.Error("cluster: removing the rejoin guard's file failed", "err", err)
		return
	}
	syncDir(n.cfg.Dir)
	n.log.Info("cluster: every group caught up after the lost raft log; the guard ends")
}

// probeHistory asks the peers whether the cluster has a history, until one
// answers.
func (n *Node) probeHistory() {
	if len(n.cfg.Peers) < 2 {
		os.Remove(filepath.Join(n.cfg.Dir, rejoinFile))
		n.rejoin.Store(rejoinNone) // alone: no one to vote with
		return
	}
	for {
		for id, addr := range n.cfg.Peers {
			if id == n.cfg.NodeID {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s, err := FetchStatus(ctx, addr)
			cancel()
			if err != nil {
				continue
			}
			if s.Meta.Commit > firstIndex-1 || len(s.Topics) > 0 {
				if err := n.writeRejoin("wiped"); err != nil {
					// Stays unknown (no votes): asked again.
					n.log.Error("cluster: recording the rejoin guard failed", "err", err)
					break
				}
				n.rejoin.Store(rejoinWiped)
				n.log.Warn("cluster: this node's raft log was empty but the cluster has a history (a wiped disk?): it forgot its votes, so in each group it votes only once it has caught up with the group's leader",
					"peer", id, "peer_meta_commit", s.Meta.Commit)
			} else {
				if err := os.Remove(filepath.Join(n.cfg.Dir, rejoinFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
					n.log.Error("cluster: removing the rejoin guard's file failed", "err", err)
					break
				}
				n.rejoin.Store(rejoinNone)
				n.log.Info("cluster: new cluster (no peer has a history)", "peer", id)
			}
			return
		}
		select {
		case <-n.stopc:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// quarantined reports whether group g may not vote or campaign (loop).
func (n *Node) quarantined(g *group) bool {
	switch n.rejoin.Load() {
	case rejoinNone:
		return false
	case rejoinUnknown:
		return true
	}
	if g.rj.done {
		return false
	}
	if last, _ := g.log.LastIndex(); g.lead != 0 && g.lead != n.cfg.NodeID && g.rj.commit > 0 && last >= g.rj.commit {
		g.rj.done = true
		n.log.Info("cluster: caught up after rejoining; votes again", "group", g.id, "topic", g.topic, "leader", g.lead, "index", last)
		return false
	}
	return true
}

// refuseVote reports whether the incoming message m must be dropped: a
// vote or pre-vote request, or a leadership transfer, to a group that may
// not vote. It also notes the commit index a leader announces.
func (n *Node) refuseVote(g *group, m *pb.Message) bool {
	if n.rejoin.Load() == rejoinNone {
		return false
	}
	switch m.GetType() {
	case pb.MsgApp, pb.MsgHeartbeat:
		if !g.rj.done {
			g.rj.commit = max(g.rj.commit, m.GetCommit())
		}
	case pb.MsgVote, pb.MsgPreVote, pb.MsgTimeoutNow:
		return n.quarantined(g)
	}
	return false
}

// noVotesOut drops the group's own vote and pre-vote requests while it may
// not vote (a campaign would vote for itself), and while its replica here
// is installing a snapshot: its Raft log may be as long as the others'
// while its engine still lacks what the snapshot covers, and such a leader
// could neither serve those messages nor answer a produce (it still votes
// for a replica that holds them).
func (n *Node) noVotesOut(g *group, msgs []*pb.Message) []*pb.Message {
	if len(msgs) == 0 || g.snap.catching.Load() == 0 && (n.rejoin.Load() == rejoinNone || !n.quarantined(g)) {
		return msgs
	}
	out := msgs[:0:0]
	for _, m := range msgs {
		if t := m.GetType(); t != pb.MsgVote && t != pb.MsgPreVote {
			out = append(out, m)
		}
	}
	return out
}
