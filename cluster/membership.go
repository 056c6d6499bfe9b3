package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/haraqa/haraqa/engine"
)

// Membership changes (DESIGN.md "Replication", Membership). The catalog
// holds the cluster's members and each topic's replicas; admin commands
// change them through the metadata group (add a node, remove a node, move
// a replica), and the leader of each Raft group concerned then changes the
// group's configuration to match, with Raft configuration changes
// (ConfChangeV2):
//
//  1. a replica the group lacks joins as a learner (it catches up from the
//     leader's log, or a snapshot, without counting in any quorum);
//  2. once it is caught up, one change promotes it and removes the
//     replica it replaces: a joint configuration (old and new voters
//     must both agree) that Raft leaves on its own;
//  3. a leader that is itself being removed hands leadership to a
//     caught-up replica first;
//  4. when a topic's group has exactly the catalog's replicas, its leader
//     proposes the move settled (kindSettle): the retiring replica stops
//     its group and deletes its copy.
//
// Every group starts from the same virtual snapshot, holding the group's
// first voters (a topic's Initial, the metadata group's catalog Initial),
// and its configuration entries are applied again whenever Raft hands
// them again (a restart replays the log from the snapshot), so that every
// replica, a restarted one too, has the group's configuration at every
// index.

// members returns the cluster's members (sorted).
func (c *catalog) members() []uint64 {
	if c.Members != nil {
		return c.Members
	}
	return c.Initial
}

// hosts reports whether node id keeps a replica of the topic: one of its
// replicas, or one a move retires that has not settled.
func (ti *TopicInfo) hosts(id uint64) bool {
	return slices.Contains(ti.Replicas, id) || slices.Contains(ti.Retiring, id)
}

// initialVoters are the voters of the group's virtual snapshot.
func (n *Node) initialVoters(ti *TopicInfo) []uint64 {
	if ti == nil {
		return slices.Clone(n.cat.Initial)
	}
	if ti.Initial != nil {
		return slices.Clone(ti.Initial)
	}
	return slices.Clone(ti.Replicas)
}

// initMembership completes the catalog's membership at Open: the nodes
// at the cluster's start (the metadata group's first voters) and the
// replication factor are -peers and -replication on a node of the first
// cluster, and asked from a peer by a node that joins; the members added
// since are peers of the transport.
func (n *Node) initMembership() error {
	peers := make(map[uint64]string, len(n.cfg.Peers))
	for id, a := range n.cfg.Peers {
		peers[id] = a
	}
	n.cfg.Peers = peers
	n.loadLearnedPeers() // membership_join.go
	if n.cat.Initial == nil {
		if n.cfg.Join && n.wal.group(metaGroup).empty() {
			init, rf, err := n.askInitial()
			if err != nil {
				return err
			}
			n.cat.Initial, n.cat.Replication = init, rf
		} else {
			n.cat.Initial = slices.Clone(n.nodes)
		}
	}
	if n.cat.Replication == 0 {
		n.cat.Replication = n.cfg.ReplicationFactor
	}
	if err := n.cat.save(n.cfg.Dir); err != nil {
		return err
	}
	n.cfg.ReplicationFactor = n.cat.Replication
	for _, ni := range n.cat.Nodes {
		if ni.Addr != "" && ni.ID != n.cfg.NodeID {
			n.cfg.Peers[ni.ID] = ni.Addr
		}
	}
	n.nodes = slices.Clone(n.cat.members())
	return nil
}

// askInitial asks the peers' cluster listeners for the cluster's first
// nodes and replication factor (a joining node), for up to a minute.
func (n *Node) askInitial() ([]uint64, int, error) {
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		for id, addr := range n.cfg.Peers {
			if id == n.cfg.NodeID {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s, err := FetchStatus(ctx, addr)
			cancel()
			if err == nil && len(s.Initial) > 0 && s.Replication > 0 {
				n.log.Info("cluster: joining", "initial", s.Initial, "replication", s.Replication, "asked", id, "peers", s.Peers)
				n.learnPeers(s.Peers) // membership_join.go
				return s.Initial, s.Replication, nil
			}
			if err == nil {
				err = fmt.Errorf("node %d names no initial members", id)
			}
			last = err
		}
		time.Sleep(500 * time.Millisecond)
	}
	return nil, 0, fmt.Errorf("cluster: -join: no peer told the cluster's members: %v", last)
}

// applyMembership applies a membership command of the metadata log (loop).
func (n *Node) applyMembership(kind byte, arg string) error {
	switch kind {
	case kindAddNode:
		ids, addr, _ := strings.Cut(arg, "=")
		id, err := strconv.ParseUint(ids, 10, 64)
		if err != nil || id == 0 || addr == "" {
			return fmt.Errorf("cluster: add node %q: want id=host:port", arg)
		}
		n.cat.node(id).Addr = addr
		if !slices.Contains(n.cat.members(), id) {
			m := append(slices.Clone(n.cat.members()), id)
			slices.Sort(m)
			n.cat.Members = m
		}
		n.nodes = slices.Clone(n.cat.members())
		if id != n.cfg.NodeID {
			n.tr.addPeer(id, addr)
		}
		n.log.Info("cluster: node added", "node", id, "addr", addr, "members", n.nodes)
	case kindRemoveNode:
		id, err := strconv.ParseUint(arg, 10, 64)
		if err != nil || !slices.Contains(n.cat.members(), id) {
			return fmt.Errorf("cluster: remove node %q: not a member (members %v)", arg, n.cat.members())
		}
		var held []string
		for _, ti := range n.cat.Topics {
			if ti.hosts(id) {
				held = append(held, ti.Name)
			}
		}
		if len(held) > 0 {
			if len(held) > 5 {
				held = append(held[:5], "...")
			}
			return fmt.Errorf("cluster: node %d still holds replicas of %d topics (%s): move them first", id, len(held), strings.Join(held, ", "))
		}
		if len(n.cat.members()) == 1 {
			return fmt.Errorf("cluster: node %d is the last member", id)
		}
		n.cat.Members = slices.DeleteFunc(slices.Clone(n.cat.members()), func(m uint64) bool { return m == id })
		n.nodes = slices.Clone(n.cat.members())
		n.log.Info("cluster: node removed", "node", id, "members", n.nodes)
		if id == n.cfg.NodeID {
			defer n.markRemoved("it applied its own removal") // membership_removed.go
		}
	case kindMoveReplica:
		f := strings.Fields(arg)
		if len(f) != 3 {
			return fmt.Errorf("cluster: move replica %q: want topic from to", arg)
		}
		from, err1 := strconv.ParseUint(f[1], 10, 64)
		to, err2 := strconv.ParseUint(f[2], 10, 64)
		i := slices.IndexFunc(n.cat.Topics, func(t *TopicInfo) bool { return t.Name == f[0] })
		switch {
		case err1 != nil || err2 != nil:
			return fmt.Errorf("cluster: move replica %q: bad node id", arg)
		case i < 0:
			return fmt.Errorf("%w: %q", engine.ErrTopicNotFound, f[0])
		}
		ti := n.cat.Topics[i]
		switch {
		case len(ti.Retiring) > 0:
			return fmt.Errorf("cluster: topic %q: a move (of node %v) is still running", ti.Name, ti.Retiring)
		case !slices.Contains(ti.Replicas, from):
			return fmt.Errorf("cluster: topic %q: node %d is not a replica (replicas %v)", ti.Name, from, ti.Replicas)
		case slices.Contains(ti.Replicas, to):
			return fmt.Errorf("cluster: topic %q: node %d is a replica already", ti.Name, to)
		case !slices.Contains(n.cat.members(), to):
			return fmt.Errorf("cluster: node %d is not a member (members %v): add it first", to, n.cat.members())
		}
		// Copy on write: readers hold the published TopicInfo.
		nt := *ti
		if nt.Initial == nil {
			nt.Initial = slices.Clone(ti.Replicas)
		}
		nt.Replicas = append(slices.DeleteFunc(slices.Clone(ti.Replicas), func(r uint64) bool { return r == from }), to)
		slices.Sort(nt.Replicas)
		nt.Retiring = []uint64{from}
		if nt.Preferred == from {
			nt.Preferred = to
		}
		n.cat.Topics[i] = &nt
		if g := n.groups[nt.Group]; g != nil {
			g.info = &nt
			n.wakeGroup(g)
			n.touched[g.id] = g
		}
		if to == n.cfg.NodeID {
			if err := n.e.CreateTopic(nt.Name); err != nil && !errors.Is(err, engine.ErrTopicExists) {
				n.log.Error("cluster: creating a moved replica's storage failed", "topic", nt.Name, "err", err)
				return err
			}
			if err := n.startGroup(nt.Group, &nt, 0, false); err != nil {
				n.log.Error("cluster: starting a moved replica's raft group failed", "topic", nt.Name, "err", err)
				return err
			}
		}
		n.log.Info("cluster: replica moving", "topic", nt.Name, "from", from, "to", to, "replicas", nt.Replicas)
	case kindSettle:
		i := slices.IndexFunc(n.cat.Topics, func(t *TopicInfo) bool { return t.Name == arg })
		if i < 0 || len(n.cat.Topics[i].Retiring) == 0 {
			return nil // settled already, or deleted
		}
		nt := *n.cat.Topics[i]
		nt.Retiring = nil
		n.cat.Topics[i] = &nt
		g := n.groups[nt.Group]
		if g != nil {
			g.info = &nt
		}
		if !nt.hosts(n.cfg.NodeID) {
			if g != nil {
				delete(n.groups, nt.Group)
				delete(n.touched, nt.Group)
				delete(n.q.active, nt.Group)
				g.stopApply()
			}
			if err := n.e.DeleteTopic(nt.Name); err != nil && !errors.Is(err, engine.ErrTopicNotFound) {
				n.log.Error("cluster: deleting a moved-away replica failed", "topic", nt.Name, "err", err)
			}
		}
		n.log.Info("cluster: replica move settled", "topic", nt.Name, "replicas", nt.Replicas)
	}
	return nil
}

// applyConfChanges applies the group's committed configuration changes to
// its RawNode, in log order (loop, before Advance); a snapshot installed
// brings its configuration.
func (n *Node) applyConfChanges(g *group, rd *raft.Ready) {
	if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
		n.noteConf(g, confStateOf(g.rn.Status().Config))
	}
	for _, e := range rd.CommittedEntries {
		var cc pb.ConfChangeI
		switch e.GetType() {
		case pb.EntryConfChange:
			var c pb.ConfChange
			if err := proto.Unmarshal(e.Data, &c); err != nil {
				n.log.Error("cluster: bad configuration change entry", "group", g.id, "index", e.GetIndex(), "err", err)
				continue
			}
			cc = &c
		case pb.EntryConfChangeV2:
			var c pb.ConfChangeV2
			if err := proto.Unmarshal(e.Data, &c); err != nil {
				n.log.Error("cluster: bad configuration change entry", "group", g.id, "index", e.GetIndex(), "err", err)
				continue
			}
			cc = &c
		default:
			continue
		}
		before := append(slices.Clone(g.log.voters), g.learners...)
		cs := g.rn.ApplyConfChange(cc)
		n.noteConf(g, cs)
		n.snapshotForNewReplica(g, before, cs, e.GetIndex())
		n.log.Info("cluster: configuration changed", "group", g.id, "topic", g.topic, "index", e.GetIndex(),
			"voters", cs.Voters, "outgoing", cs.VotersOutgoing, "learners", cs.Learners)
	}
}

// snapshotForNewReplica asks a topic group whose log was compacted for a
// new snapshot when a configuration change added a replica: Raft refuses a
// snapshot whose configuration lacks the node (the last compaction's is
// from before it was added), and an idle topic would not compact again on
// its own, so the new replica could never catch up. Until that compaction
// no snapshot is sent (the stale one would only be refused, again and
// again).
func (n *Node) snapshotForNewReplica(g *group, before []uint64, cs *pb.ConfState, index uint64) {
	if fi, _ := g.log.FirstIndex(); fi <= firstIndex {
		return // never compacted: the new replica catches up from the log
	}
	for _, id := range append(slices.Clone(cs.GetVoters()), cs.GetLearners()...) {
		if !slices.Contains(before, id) {
			g.log.mu.Lock()
			g.log.snapNeed = max(g.log.snapNeed, index)
			g.log.mu.Unlock()
			if g.topic != "" {
				wantSnapshot(g) // the metadata group: snapshotMeta
			}
			return
		}
	}
}

// wantSnapshot asks the topic's apply goroutine for a durable point (the
// loop compacts at it: snapshot.go).
func wantSnapshot(g *group) {
	if !g.snap.want.Swap(true) {
		select {
		case g.asig <- struct{}{}:
		default:
		}
	}
}

// snapshotBehind reports whether the group's snapshot is older than a
// replica added since (a compaction is still due).
func (g *group) snapshotBehind() bool {
	g.log.mu.Lock()
	defer g.log.mu.Unlock()
	return g.log.snap.index < g.log.snapNeed
}

// noteConf records the group's configuration (loop): its voters (those of
// both halves of a joint configuration), learners, whether it is joint.
func (n *Node) noteConf(g *group, cs *pb.ConfState) {
	voters := append(slices.Clone(cs.GetVoters()), cs.GetVotersOutgoing()...)
	slices.Sort(voters)
	g.log.mu.Lock()
	g.log.voters = slices.Compact(voters)
	g.log.mu.Unlock()
	g.learners = append(slices.Clone(cs.GetLearners()), cs.GetLearnersNext()...)
	g.joint = len(cs.GetVotersOutgoing()) > 0
	n.wakeGroup(g)
	n.touched[g.id] = g
}

// memberTick moves every group this node leads toward the catalog's
// replicas (loop, every 4th tick: often enough to keep a changing group
// from going quiet, see quiesce.go; cheap for groups that have them).
func (n *Node) memberTick() {
	if n.q.ticks%4 != 0 {
		return
	}
	for _, g := range n.groups {
		if g.topic != "" && g.snapshotBehind() {
			wantSnapshot(g) // again, until a compaction covers the change
		}
		if g.state != raft.StateLeader {
			continue
		}
		want := n.cat.members()
		retiring := false
		if g.info != nil {
			want, retiring = g.info.Replicas, len(g.info.Retiring) > 0
		}
		if !retiring && !g.joint && len(g.learners) == 0 && slices.Equal(want, g.log.voters) {
			continue
		}
		n.wakeGroup(g)
		n.reconcile(g, want)
	}
}

// reconcile proposes the group's next configuration change toward want
// (the group's leader), at most one a second.
func (n *Node) reconcile(g *group, want []uint64) {
	if time.Since(g.confProposed) < time.Second {
		return
	}
	st := g.rn.Status()
	if len(st.Config.Voters[1]) > 0 {
		return // joint: Raft leaves it on its own
	}
	voters := st.Config.Voters[0].Slice()
	var learners []uint64
	for id := range st.Config.Learners {
		learners = append(learners, id)
	}
	slices.Sort(learners)
	var cc pb.ConfChangeV2
	change := func(t pb.ConfChangeType, id uint64) {
		cc.Changes = append(cc.Changes, &pb.ConfChangeSingle{Type: t.Enum(), NodeId: new(id)})
	}
	// 1. New replicas join as learners.
	for _, id := range want {
		if !slices.Contains(voters, id) && !slices.Contains(learners, id) {
			change(pb.ConfChangeAddLearnerNode, id)
		}
	}
	if len(cc.Changes) == 0 {
		// 2. Caught-up learners become voters and the replaced voters
		// leave, in one (joint) change; a lagging learner is waited for.
		last, _ := g.log.LastIndex()
		for _, id := range learners {
			if !slices.Contains(want, id) {
				change(pb.ConfChangeRemoveNode, id)
				continue
			}
			pr, ok := st.Progress[id]
			if !ok || pr.Match == 0 || pr.Match < st.GetCommit() && pr.Match+256 < last || n.peerCatching(id, g.id) {
				return // its engine may still be fetching a snapshot's part
			}
			change(pb.ConfChangeAddNode, id)
		}
		for _, id := range voters {
			if slices.Contains(want, id) {
				continue
			}
			if id == n.cfg.NodeID {
				// 3. The leader leaves last: it hands over first.
				for _, to := range want {
					if pr, ok := st.Progress[to]; ok && slices.Contains(voters, to) && pr.Match == last && !n.peerCatching(to, g.id) {
						g.rn.TransferLeader(to)
						n.touched[g.id] = g
						g.confProposed = time.Now()
						return
					}
				}
				return
			}
			change(pb.ConfChangeRemoveNode, id)
		}
	}
	if len(cc.Changes) == 0 {
		// 4. Done: a move settles.
		if g.info != nil && len(g.info.Retiring) > 0 {
			g.confProposed = time.Now()
			topic := g.info.Name
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ProposalTimeout)
				defer cancel()
				if err := n.metaCommand(ctx, kindSettle, topic); err != nil {
					n.log.Warn("cluster: settling a replica move failed; retried", "topic", topic, "err", err)
				}
			}()
		}
		return
	}
	g.confProposed = time.Now()
	if err := g.rn.ProposeConfChange(&cc); err != nil {
		n.log.Warn("cluster: configuration change not proposed; retried", "group", g.id, "topic", g.topic, "err", err)
		return
	}
	n.touched[g.id] = g
	n.log.Info("cluster: configuration change proposed", "group", g.id, "topic", g.topic, "change", cc.String())
}
