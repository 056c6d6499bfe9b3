package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/haraqa/haraqa/cluster"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
)

// clusterConfig holds the replication flags (DESIGN.md "Replication").
// With -node-id 0 (the default) the broker runs alone.
type clusterConfig struct {
	nodeID      uint64
	peers       string
	addr        string
	replication int
	tick        time.Duration
	advertise   string
	snapBytes   int64
	join        bool
	peerMap     map[uint64]string
}

func addClusterFlags(fs *flag.FlagSet, c *clusterConfig) {
	fs.Uint64Var(&c.nodeID, "node-id", 0, "this broker's `id` in a cluster (1, 2, ...); 0: no cluster")
	fs.StringVar(&c.peers, "peers", "", "every cluster node as `id=host:port` of its cluster listener, comma-separated, this one included")
	fs.StringVar(&c.addr, "cluster-addr", "", "TCP `address` the cluster listener binds (default: this node's address in -peers)")
	fs.IntVar(&c.replication, "replication", 0, "replicas per topic in a cluster (0: min(3, nodes))")
	fs.DurationVar(&c.tick, "raft-tick", 100*time.Millisecond, "Raft tick; a follower elects a new leader after 10 ticks without one")
	fs.BoolVar(&c.join, "join", false, "join a running cluster (a node added with hrq cluster add-node): -peers names this node and at least one running node, from which it learns the others")
	fs.StringVar(&c.advertise, "advertise-addr", "", "`host:port` clients reach this node's native listener at, told to the cluster for placement (default: the -addr listener's, with the host of this node's -peers address when -addr binds every interface)")
	fs.Int64Var(&c.snapBytes, "raft-snapshot-bytes", 32<<20, "a topic's Raft log is compacted (replaced by a snapshot of its segments) past this many `bytes`")
}

// check parses -peers; a cluster needs -node-id, -peers holding it.
func (c *clusterConfig) check() error {
	if c.nodeID == 0 {
		if c.peers != "" || c.join {
			return fmt.Errorf("-peers and -join need -node-id")
		}
		return nil
	}
	c.peerMap = map[uint64]string{}
	for _, p := range strings.Split(c.peers, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		n, err := strconv.ParseUint(id, 10, 64)
		if !ok || err != nil || n == 0 || addr == "" {
			return fmt.Errorf("-peers %q: want id=host:port,... with ids from 1", c.peers)
		}
		if _, dup := c.peerMap[n]; dup {
			return fmt.Errorf("-peers %q: node %d given twice", c.peers, n)
		}
		c.peerMap[n] = addr
	}
	if _, ok := c.peerMap[c.nodeID]; !ok {
		return fmt.Errorf("-peers %q does not name this node (-node-id %d)", c.peers, c.nodeID)
	}
	if c.replication < 0 || c.replication > len(c.peerMap) {
		return fmt.Errorf("-replication %d: want 0 to the %d nodes", c.replication, len(c.peerMap))
	}
	if c.snapBytes <= 0 {
		return fmt.Errorf("-raft-snapshot-bytes: want a size above 0")
	}
	if c.tick <= 0 {
		return fmt.Errorf("-raft-tick: want a duration above 0")
	}
	return nil
}

// startCluster joins the cluster when -node-id is set and returns the log
// service the server fronts (the engine alone otherwise) and its stop.
func startCluster(c *clusterConfig, vols []string, e *engine.Engine, relay *cluster.Relay, log *slog.Logger, listeners []net.Listener) (logsvc.Service, func(), error) {
	if c.nodeID == 0 {
		return e, func() {}, nil
	}
	addr := c.addr
	if addr == "" {
		addr = c.peerMap[c.nodeID]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("-cluster-addr %s: %w", addr, err)
	}
	n, err := cluster.Open(cluster.Config{NodeID: c.nodeID, Peers: c.peerMap, Listener: ln, Dir: filepath.Join(vols[0], "cluster"),
		Engine: e, Logger: log, ReplicationFactor: c.replication, TickInterval: c.tick, ClientAddr: c.advertiseAddr(listeners),
		SnapshotBytes: c.snapBytes, Join: c.join, Relay: relay})
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	log.Info("cluster listener", "addr", ln.Addr().String(), "node", c.nodeID, "nodes", len(c.peerMap))
	return n, func() { n.Close() }, nil
}

// engineFsync is the engine's fsync policy: -fsync alone, or in a cluster
// never: there the Raft log, synced before every acknowledgement, is the
// durable copy, and a crash's lost engine tail is written again from it
// (DESIGN.md "Replication").
func engineFsync(c *config) engine.FsyncPolicy {
	if c.cluster.nodeID != 0 {
		return engine.FsyncNever
	}
	return fsyncPolicy(c.fsync)
}

// advertiseAddr is the client address this node tells the cluster:
// -advertise-addr, else the first TCP listener's address, its host taken
// from this node's -peers address when the listener binds every interface.
func (c *clusterConfig) advertiseAddr(listeners []net.Listener) string {
	if c.advertise != "" {
		return c.advertise
	}
	for _, l := range listeners {
		a, ok := l.Addr().(*net.TCPAddr)
		if !ok {
			continue
		}
		if !a.IP.IsUnspecified() {
			return a.String()
		}
		host, _, err := net.SplitHostPort(c.peerMap[c.nodeID])
		if err != nil {
			return ""
		}
		return net.JoinHostPort(host, strconv.Itoa(a.Port))
	}
	return ""
}
