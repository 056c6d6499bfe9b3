package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/haraqa/haraqa/vfs"
)

// A node started with -join learns the cluster addresses of the running
// nodes from the node it asks (its Status names every peer it knows), so
// that -peers needs to name only the joining node and one running node.
// The addresses learned are kept in cluster/peers.json: a restart knows
// them too (the catalog holds only the addresses of nodes added later).

const learnedPeersFile = "peers.json"

// learnPeers adds to the node's peers those of peers it does not know, and
// records them (Open, joining).
func (n *Node) learnPeers(peers map[uint64]string) {
	learned := map[uint64]string{}
	for id, addr := range peers {
		if _, ok := n.cfg.Peers[id]; !ok && id != n.cfg.NodeID && addr != "" {
			n.cfg.Peers[id] = addr
			learned[id] = addr
		}
	}
	if len(learned) == 0 {
		return
	}
	old := n.readLearnedPeers()
	for id, addr := range old {
		if _, ok := learned[id]; !ok {
			learned[id] = addr
		}
	}
	b, err := json.Marshal(learned)
	if err == nil {
		err = vfs.WriteFileAtomic(vfs.OSFS{}, filepath.Join(n.cfg.Dir, learnedPeersFile), b)
	}
	if err != nil {
		n.log.Warn("cluster: recording the peers learned when joining failed; a restart needs them in -peers", "err", err)
		return
	}
	n.log.Info("cluster: learned peers from the cluster", "peers", learned)
}

// loadLearnedPeers adds the peers learned when this node joined to those
// of -peers (Open).
func (n *Node) loadLearnedPeers() {
	for id, addr := range n.readLearnedPeers() {
		if _, ok := n.cfg.Peers[id]; !ok && id != n.cfg.NodeID {
			n.cfg.Peers[id] = addr
		}
	}
}

func (n *Node) readLearnedPeers() map[uint64]string {
	b, err := os.ReadFile(filepath.Join(n.cfg.Dir, learnedPeersFile))
	if err != nil {
		return nil
	}
	var m map[uint64]string
	if err := json.Unmarshal(b, &m); err != nil {
		n.log.Warn("cluster: ignoring a bad peers file", "path", filepath.Join(n.cfg.Dir, learnedPeersFile), "err", err)
		return nil
	}
	return m
}
