package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/haraqa/haraqa/engine"
)

// Compaction of the metadata group (DESIGN.md "Replication", Snapshots).
//
// The metadata group's state machine is the catalog, applied on the node
// loop and saved (catalog.json) with the index it reflects. Its snapshot
// is the catalog itself: once the group's retained log passes
// Config.SnapshotBytes (or the Raft log file is due for a rewrite, or a
// node was added since the last snapshot), the loop saves the catalog and
// compacts the group's log up to the catalog's applied index, recording
// the catalog and the group's ConfState at that index. A node that needs
// entries the leader dropped (down meanwhile, wiped, or joining) is sent
// that snapshot and installs the catalog: it stops and deletes the
// replicas of topics that are gone or moved away, and creates and starts
// those it now holds, as if it had applied the commands one by one.

// metaSnapVersion is the first byte of a metadata snapshot's data; the
// catalog follows as JSON.
const metaSnapVersion = 1

func encodeMetaSnap(c *catalog) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return append([]byte{metaSnapVersion}, b...), nil
}

func decodeMetaSnap(b []byte) (catalog, error) {
	var c catalog
	if len(b) < 1 || b[0] != metaSnapVersion {
		return c, errors.New("cluster: bad metadata snapshot")
	}
	if err := json.Unmarshal(b[1:], &c); err != nil {
		return c, fmt.Errorf("cluster: metadata snapshot: %w", err)
	}
	return c, nil
}

// snapshotMeta compacts the metadata group's log at the catalog's applied
// index when it holds more than limit bytes, when the file is due for a
// rewrite, or when a node was added since its last snapshot (loop).
func (n *Node) snapshotMeta(g *group, limit int64, due bool) {
	lb := g.log.logBytes()
	if lb <= limit && !(due && lb > 0) && !g.snapshotBehind() {
		return
	}
	idx := n.cat.Applied
	first, _ := g.log.FirstIndex()
	if idx < first {
		return
	}
	term, err := g.log.Term(idx)
	if err != nil {
		return
	}
	data, err := encodeMetaSnap(&n.cat)
	if err != nil {
		n.log.Error("cluster: encoding the catalog for a snapshot failed", "err", err)
		return
	}
	// The catalog must be durable at idx before the log below it goes.
	if err := n.cat.save(n.cfg.Dir); err != nil {
		n.log.Error("cluster: saving the catalog failed; the metadata log is not compacted", "err", err)
		return
	}
	n.compact(g, &durablePoint{index: idx, term: term, data: data})
}

// installCatalog makes the catalog of the metadata snapshot marker e this
// node's (loop, after the snapshot was recorded in the Raft log): the
// replicas it no longer holds are stopped and deleted, the ones it now
// holds created and started.
func (n *Node) installCatalog(e *pb.Entry) {
	idx := e.GetIndex()
	if idx <= n.cat.Applied {
		return
	}
	c, err := decodeMetaSnap(e.Data)
	if err != nil {
		n.log.Error("cluster: bad metadata snapshot; not installed", "index", idx, "err", err)
		return
	}
	c.Applied = idx
	if c.Initial == nil {
		c.Initial = n.cat.Initial
	}
	if c.Replication == 0 {
		c.Replication = n.cat.Replication
	}
	old := n.cat.Topics
	n.cat = c
	held := func(ts []*TopicInfo, ti *TopicInfo) bool {
		return slices.ContainsFunc(ts, func(o *TopicInfo) bool {
			return o.Group == ti.Group && o.Name == ti.Name && o.hosts(n.cfg.NodeID)
		})
	}
	// Replicas gone (deleted, or moved away and settled) first: a topic
	// deleted and created again has the same name and a new group.
	for _, ti := range old {
		if !ti.hosts(n.cfg.NodeID) || held(c.Topics, ti) {
			continue
		}
		if g := n.groups[ti.Group]; g != nil {
			delete(n.groups, ti.Group)
			delete(n.touched, ti.Group)
			delete(n.q.active, ti.Group)
			g.stopApply()
		}
		if derr := n.e.DeleteTopic(ti.Name); derr != nil && !errors.Is(derr, engine.ErrTopicNotFound) {
			n.log.Error("cluster: deleting a replica the catalog no longer holds failed", "topic", ti.Name, "err", derr)
		}
	}
	for _, ti := range c.Topics {
		if !ti.hosts(n.cfg.NodeID) {
			continue
		}
		if g := n.groups[ti.Group]; g != nil {
			g.info = ti
			continue
		}
		if cerr := n.e.CreateTopic(ti.Name); cerr != nil && !errors.Is(cerr, engine.ErrTopicExists) {
			n.log.Error("cluster: creating a replicated topic's storage failed", "topic", ti.Name, "err", cerr)
			continue
		}
		if serr := n.startGroup(ti.Group, ti, 0, false); serr != nil {
			n.log.Error("cluster: starting a topic's raft group failed", "topic", ti.Name, "err", serr)
		}
	}
	n.cfg.ReplicationFactor = n.cat.Replication
	n.nodes = slices.Clone(n.cat.members())
	for _, ni := range n.cat.Nodes {
		if ni.Addr != "" && ni.ID != n.cfg.NodeID {
			n.tr.addPeer(ni.ID, ni.Addr)
		}
	}
	if err := n.cat.save(n.cfg.Dir); err != nil {
		n.log.Error("cluster: saving the catalog failed", "err", err)
	}
	n.publishTopics()
	n.log.Info("cluster: installed the catalog from a metadata snapshot", "index", idx, "topics", len(n.cat.Topics), "members", n.nodes)
}

// catalogFromSnapshot takes the metadata group's snapshot in the Raft log
// as the catalog when the saved catalog is older (Open): the catalog is
// saved before every compaction and after every install, so only a failed
// save leaves it behind.
func (n *Node) catalogFromSnapshot() {
	g := n.wal.group(metaGroup)
	g.mu.Lock()
	sm := g.snap
	g.mu.Unlock()
	if !sm.realSnap() || sm.index <= n.cat.Applied {
		return
	}
	c, err := decodeMetaSnap(sm.data)
	if err != nil {
		n.log.Error("cluster: bad metadata snapshot in the raft log; the saved catalog stays", "index", sm.index, "err", err)
		return
	}
	n.log.Warn("cluster: the saved catalog is older than the metadata snapshot; starting from the snapshot", "saved", n.cat.Applied, "snapshot", sm.index)
	c.Applied = sm.index
	n.cat = c
}
