package cluster

import (
	"context"
	"slices"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// NodeInfo is one node of the cluster as the catalog knows it.
type NodeInfo struct {
	ID uint64 `json:"id"`
	// Addr is the cluster address of a node added after the cluster's
	// start (the first nodes' are in -peers).
	Addr string `json:"addr,omitempty"`
	// Client is the address clients reach the node's native listener at
	// (Config.ClientAddr), as the node announced it.
	Client string `json:"client,omitempty"`
	// Kafka is the address Kafka clients reach the node's Kafka listener
	// at, as the node announced it (empty: it runs none; kafkameta.go).
	Kafka string `json:"kafka,omitempty"`
}

// node returns the catalog's entry for id, adding it when missing.
func (c *catalog) node(id uint64) *NodeInfo {
	for _, ni := range c.Nodes {
		if ni.ID == id {
			return ni
		}
	}
	ni := &NodeInfo{ID: id}
	c.Nodes = append(c.Nodes, ni)
	slices.SortFunc(c.Nodes, func(a, b *NodeInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return ni
}

func (c *catalog) setClientAddr(id uint64, addr string) { c.node(id).Client = addr }

// startMember starts the node's announcement of its client address: it is
// proposed to the metadata group (retried every second while there is no
// metadata leader) until this node's catalog holds it.
func (n *Node) startMember() {
	if n.cfg.ClientAddr == "" {
		return
	}
	go func() {
		for {
			if n.knowsClientAddr() {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := n.metaCommand(ctx, kindNodeAddr, n.cfg.ClientAddr)
			cancel()
			if err == nil {
				return
			}
			select {
			case <-n.stopc:
				return
			case <-time.After(time.Second):
			}
		}
	}()
}

// knowsClientAddr reports whether the catalog holds this node's client
// address as configured (asked on the loop).
func (n *Node) knowsClientAddr() bool {
	ok := make(chan bool, 1)
	f := func() {
		for _, ni := range n.cat.Nodes {
			if ni.ID == n.cfg.NodeID {
				ok <- ni.Client == n.cfg.ClientAddr
				return
			}
		}
		ok <- false
	}
	select {
	case n.doq <- f:
		return <-ok
	case <-n.done:
		return true // stopped: nothing more to announce
	}
}

// Placement answers a client's placement request (server.Placer): every
// node's client address, and for each topic asked (none: all) the leader
// and term this node knows (0 when it is not a replica, or no leader is
// known) and the replicas. It runs on the node loop.
func (n *Node) Placement(ctx context.Context, topics []string) (netproto.PlacementResponse, error) {
	ch := make(chan netproto.PlacementResponse, 1)
	f := func() {
		var r netproto.PlacementResponse
		for _, ni := range n.cat.Nodes {
			r.Nodes = append(r.Nodes, netproto.PlacementNode{ID: ni.ID, Addr: []byte(ni.Client)})
		}
		for _, ti := range n.cat.Topics {
			if len(topics) > 0 && !slices.Contains(topics, ti.Name) {
				continue
			}
			pt := netproto.PlacementTopic{Name: []byte(ti.Name), Replicas: slices.Clone(ti.Replicas)}
			if g := n.groups[ti.Group]; g != nil {
				st := g.rn.BasicStatus()
				pt.Leader = st.Lead
				if st.Lead != 0 {
					pt.Term = st.GetTerm()
				}
			}
			r.Topics = append(r.Topics, pt)
		}
		ch <- r
	}
	select {
	case n.doq <- f:
	case <-ctx.Done():
		return netproto.PlacementResponse{}, ctx.Err()
	case <-n.done:
		return netproto.PlacementResponse{}, unavailable("cluster: node stopped")
	}
	return <-ch, nil
}
