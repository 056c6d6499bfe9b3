package kafka

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClusterView is what a cluster node's listener names in Metadata
// answers beside itself: the other nodes that serve Kafka and each
// topic's leader and replicas (Options.Cluster).
type ClusterView struct {
	// Brokers are the other live nodes with a Kafka listener.
	Brokers []ClusterBroker
	// Partitions holds each topic's partition as the cluster places it.
	Partitions map[string]ClusterPartition
}

// ClusterBroker is one node's Kafka node id and advertised host:port.
type ClusterBroker struct {
	ID   int32
	Addr string
}

// ClusterPartition is a topic's partition: its leader (-1: none to name,
// the listener names itself) and its replicas, in-sync and offline.
type ClusterPartition struct {
	Leader                 int32
	Replicas, ISR, Offline []int32
}

// clusterViewTimeout bounds asking the cluster for its view.
const clusterViewTimeout = 2 * time.Second

// clusterMeta is a Metadata answer's view of the cluster: the brokers to
// name beside this one and each topic's partition.
type clusterMeta struct {
	brokers []kmsg.MetadataResponseBroker
	named   map[int32]bool
	parts   map[string]ClusterPartition
}

// clusterMetadata returns the cluster's view (nil without
// Options.Cluster, or when the view cannot be had: the listener then
// names itself alone, as one node does).
func (c *conn) clusterMetadata() *clusterMeta {
	if c.s.opts.Cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterViewTimeout)
	defer cancel()
	v, err := c.s.opts.Cluster(ctx)
	if err != nil {
		c.s.opts.Logger.Debug("kafka: no cluster view for Metadata; naming this node alone", "err", err)
		return nil
	}
	m := &clusterMeta{named: map[int32]bool{c.s.opts.NodeID: true}, parts: v.Partitions}
	for _, b := range v.Brokers {
		host, port, err := net.SplitHostPort(b.Addr)
		p, perr := strconv.Atoi(port)
		if m.named[b.ID] || err != nil || perr != nil {
			continue
		}
		m.named[b.ID] = true
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = b.ID, host, int32(p)
		m.brokers = append(m.brokers, mb)
	}
	return m
}

// partition fills p from the cluster's view of topic: its leader when
// that node is named as a broker, else this node (which forwards to the
// leader what it does not lead), and its replicas.
func (m *clusterMeta) partition(self int32, topic string, p *kmsg.MetadataResponseTopicPartition) {
	cp, ok := m.parts[topic]
	if !ok {
		return
	}
	if m.named[cp.Leader] {
		p.Leader = cp.Leader
	} else {
		p.Leader = self
	}
	if len(cp.Replicas) > 0 {
		p.Replicas = cp.Replicas
		p.ISR = cp.ISR
		p.OfflineReplicas = cp.Offline
	}
}
