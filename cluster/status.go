package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"time"

	"go.etcd.io/raft/v3"
)

// Status is a node's view of the cluster (`hrq cluster status`).
type Status struct {
	Node    uint64            `json:"node"`
	Peers   map[uint64]string `json:"peers"`
	PeersUp map[uint64]bool   `json:"peers_up"` // this node's connection to each peer works
	Meta    GroupStatus       `json:"meta"`
	Topics  []GroupStatus     `json:"topics"`
	// Transport counters since start: Raft messages and bytes sent and
	// received, and writes (flushes) sent: messages per write shows the
	// coalescing.
	MsgsOut   uint64 `json:"msgs_out"`
	MsgsIn    uint64 `json:"msgs_in"`
	BytesOut  uint64 `json:"bytes_out"`
	BytesIn   uint64 `json:"bytes_in"`
	WritesOut uint64 `json:"writes_out"`
	// RaftLogBytes is the size of the node's Raft log file.
	RaftLogBytes int64 `json:"raft_log_bytes"`
	// Membership: the nodes the cluster started with, its members now,
	// and the replication factor of new topics.
	Initial     []uint64 `json:"initial,omitempty"`
	Members     []uint64 `json:"members,omitempty"`
	Replication int      `json:"replication,omitempty"`
}

// GroupStatus is one Raft group on this node.
type GroupStatus struct {
	Topic     string   `json:"topic,omitempty"`
	Group     uint64   `json:"group"`
	Replicas  []uint64 `json:"replicas"`
	Preferred uint64   `json:"preferred,omitempty"`
	Leader    uint64   `json:"leader"`
	Role      string   `json:"role"`
	Term      uint64   `json:"term"`
	Commit    uint64   `json:"commit"`            // Raft commit index as this node knows it
	Applied   uint64   `json:"applied,omitempty"` // last entry this node stored in its engine
	End       uint64   `json:"end,omitempty"`     // end offset of this node's replica
	// Match is, on the leader, each replica's last Raft index known
	// replicated; its lag is Commit − Match.
	Match map[uint64]uint64 `json:"match,omitempty"`
	// Quiet: the group is idle and does not tick (DESIGN.md "Replication").
	Quiet bool `json:"quiet,omitempty"`
	// Learners are replicas catching up before they vote (a move);
	// Retiring the replicas a move replaces, until it settles.
	Learners []uint64 `json:"learners,omitempty"`
	Retiring []uint64 `json:"retiring,omitempty"`
	// Produce batches this node took for the topic while leading it, and
	// while a follower (its proposals forwarded to the leader by Raft).
	ProducesLed       uint64 `json:"produces_led,omitempty"`
	ProducesForwarded uint64 `json:"produces_forwarded,omitempty"`
	// Snapshot is the index the group's Raft log starts after (its last
	// compaction or the snapshot it received); 1 before any.
	Snapshot uint64 `json:"snapshot,omitempty"`
}

// Status returns the node's view; it runs on the node loop.
func (n *Node) Status(ctx context.Context) (*Status, error) {
	ch := make(chan *Status, 1)
	select {
	case n.statusq <- ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.done:
		return nil, fmt.Errorf("cluster: node stopped")
	}
	select {
	case s := <-ch:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.done:
		return nil, fmt.Errorf("cluster: node stopped")
	}
}

// status builds the Status on the loop goroutine.
func (n *Node) status() *Status {
	// Every peer's address: -peers', and those of nodes added since (a
	// node joining through this one learns them: membership_join.go).
	peers := maps.Clone(n.cfg.Peers)
	n.tr.ids.Range(func(k, v any) bool {
		peers[k.(uint64)] = v.(string)
		return true
	})
	s := &Status{Node: n.cfg.NodeID, Peers: peers, PeersUp: map[uint64]bool{},
		MsgsOut: n.tr.msgsOut.Load(), MsgsIn: n.tr.msgsIn.Load(), BytesOut: n.tr.bytesOut.Load(),
		BytesIn: n.tr.bytesIn.Load(), WritesOut: n.tr.writesOut.Load(), RaftLogBytes: n.wal.size}
	s.Initial, s.Members, s.Replication = n.cat.Initial, n.cat.members(), n.cat.Replication
	for id, p := range n.tr.peers {
		s.PeersUp[id] = p.up.Load()
	}
	one := func(g *group) GroupStatus {
		st := g.rn.Status()
		gs := GroupStatus{Group: g.id, Replicas: g.log.voters, Leader: st.Lead, Role: st.RaftState.String(),
			Term: st.HardState.GetTerm(), Commit: st.HardState.GetCommit(), Quiet: g.quiet}
		gs.ProducesLed, gs.ProducesForwarded = g.producesLed, g.producesForwarded
		gs.Learners = g.learners
		if g.info != nil {
			gs.Retiring = g.info.Retiring
		}
		if fi, err := g.log.FirstIndex(); err == nil {
			gs.Snapshot = fi - 1
		}
		if g.info != nil {
			gs.Topic, gs.Preferred, gs.Applied = g.info.Name, g.info.Preferred, g.applied.Load()
			if _, end, err := n.e.Offsets(g.info.Name); err == nil {
				gs.End = end
			}
		}
		if st.RaftState == raft.StateLeader {
			gs.Match = map[uint64]uint64{}
			for id, pr := range st.Progress {
				gs.Match[id] = pr.Match
			}
		}
		return gs
	}
	for _, ti := range n.cat.Topics {
		if g := n.groups[ti.Group]; g != nil {
			s.Topics = append(s.Topics, one(g))
		} else {
			s.Topics = append(s.Topics, GroupStatus{Topic: ti.Name, Group: ti.Group, Replicas: ti.Replicas, Preferred: ti.Preferred, Role: "not a replica"})
		}
	}
	if g := n.groups[metaGroup]; g != nil {
		s.Meta = one(g)
	}
	return s
}

// The cluster listener also answers a status request: a hello with the
// status magic (and node id 0) gets the node's Status as JSON, then the
// connection closes. FORMAT.md "Cluster transport".
const statusMagic = 0x48524353 // "HRCS"

func (t *transport) serveStatus(c net.Conn, n func() (*Status, error)) error {
	s, err := n()
	if err != nil {
		return err
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return json.NewEncoder(c).Encode(s)
}

// FetchStatus asks the node whose cluster listener is at addr for its
// Status.
func FetchStatus(ctx context.Context, addr string) (*Status, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	var hello [16]byte
	binary.LittleEndian.PutUint32(hello[0:], statusMagic)
	binary.LittleEndian.PutUint32(hello[4:], 1)
	if _, err := c.Write(hello[:]); err != nil {
		return nil, err
	}
	var s Status
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&s); err != nil {
		return nil, fmt.Errorf("cluster status from %s: %w", addr, err)
	}
	return &s, nil
}
