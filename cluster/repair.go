package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/haraqa/haraqa/record"
)

// Repair across hosts (DESIGN.md "Replication", Repair). The engine
// repairs a damaged sealed segment from its own mirror volumes; when no
// mirror has a good copy it reports the segment (Engine.SetDamageHandler),
// and the node re-fetches the damaged batches from another replica of the
// topic, which stores the same bytes, over the cluster listener's fetch
// (snapfetch.go), and has the engine write them in place
// (Engine.RepairSegment).

type repairKey struct {
	topic string
	base  uint64
}

// repairs tracks the repairs under way, so that a damage reported by many
// reads at once is repaired once.
type repairs struct {
	mu      sync.Mutex
	running map[repairKey]bool
}

// startRepairs makes the engine report damage no mirror can repair to the
// node (Open).
func (n *Node) startRepairs() {
	n.rep.running = map[repairKey]bool{}
	n.e.SetDamageHandler(n.repairFromPeer)
}

// repairFromPeer repairs topic's sealed segment base from another replica
// (its own goroutine), trying each replica in turn, a few rounds.
func (n *Node) repairFromPeer(topic string, base uint64) {
	k := repairKey{topic, base}
	n.rep.mu.Lock()
	if n.rep.running[k] {
		n.rep.mu.Unlock()
		return
	}
	n.rep.running[k] = true
	n.rep.mu.Unlock()
	defer func() {
		n.rep.mu.Lock()
		delete(n.rep.running, k)
		n.rep.mu.Unlock()
	}()
	n.tmu.RLock()
	ti := n.topics[topic]
	lead := n.leads[topic]
	n.tmu.RUnlock()
	if ti == nil {
		return
	}
	var peers []uint64
	if lead != 0 && lead != n.cfg.NodeID {
		peers = append(peers, lead)
	}
	for _, id := range ti.Replicas {
		if id != n.cfg.NodeID && id != lead {
			peers = append(peers, id)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	for round := range 5 {
		for _, peer := range peers {
			fetch := func(ctx context.Context, from, to uint64, fn func([]byte) error) error {
				return n.fetchRange(ctx, peer, topic, from, to, func(b []byte, _ *record.Header) error { return fn(b) })
			}
			fixed, err := n.e.RepairSegment(ctx, topic, base, fetch)
			if err == nil {
				if fixed > 0 {
					n.log.Warn("cluster: repaired a damaged segment from a peer", "topic", topic, "segment", base, "peer", peer, "copies", fixed)
				}
				return
			}
			n.log.Error("cluster: repairing a damaged segment from a peer failed", "topic", topic, "segment", base, "peer", peer, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(round+1) * time.Second):
		}
	}
	n.log.Error("cluster: a damaged segment could not be repaired from any replica", "topic", topic, "segment", base,
		"replicas", fmt.Sprint(slices.Clone(ti.Replicas)))
}
