package cluster

import (
	"context"
	"slices"
	"time"
)

// A node's Kafka listener names the cluster's brokers and each topic's
// leader in its Metadata answers, so Kafka clients send each topic's
// produces and fetches to its leader and know the other nodes when the
// one they bootstrapped from dies. The nodes tell each other their Kafka
// advertised addresses through the metadata group (kindKafkaAddr), as
// they do their client addresses for the native placement (member.go).

// AnnounceKafka has the node tell the cluster addr, the address Kafka
// clients reach its Kafka listener at: proposed to the metadata group
// (retried every second while there is no metadata leader) until this
// node's catalog holds it. A node that never calls it runs no Kafka
// listener, and the other nodes' Metadata answers leave it out.
func (n *Node) AnnounceKafka(addr string) {
	if addr == "" {
		return
	}
	go func() {
		for {
			if n.knowsKafkaAddr(addr) {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := n.metaCommand(ctx, kindKafkaAddr, addr)
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

func (n *Node) knowsKafkaAddr(addr string) bool {
	ok := make(chan bool, 1)
	f := func() {
		for _, ni := range n.cat.Nodes {
			if ni.ID == n.cfg.NodeID {
				ok <- ni.Kafka == addr
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

// KafkaNode is a cluster node as a Kafka Metadata answer names it.
type KafkaNode struct {
	ID   uint64
	Addr string // its Kafka advertised address; empty: it runs no Kafka listener
	Down bool   // nothing heard from it for an election timeout
}

// KafkaTopic is a topic's placement as this node knows it.
type KafkaTopic struct {
	Leader   uint64 // 0: not known here (an election, or not a replica)
	Replicas []uint64
}

// KafkaView is what a Kafka Metadata answer is made of: every node of the
// catalog and every topic's leader and replicas.
type KafkaView struct {
	Self   uint64
	Nodes  []KafkaNode
	Topics map[string]KafkaTopic
}

// KafkaView answers from the catalog and this node's Raft status (on the
// node loop): each member node's Kafka address and liveness, each topic's
// replicas and the leader this node knows (none when it is not a replica).
func (n *Node) KafkaView(ctx context.Context) (KafkaView, error) {
	ch := make(chan KafkaView, 1)
	f := func() {
		v := KafkaView{Self: n.cfg.NodeID, Topics: make(map[string]KafkaTopic, len(n.cat.Topics))}
		members := n.cat.members()
		for _, ni := range n.cat.Nodes {
			if !slices.Contains(members, ni.ID) {
				continue // removed from the cluster
			}
			v.Nodes = append(v.Nodes, KafkaNode{ID: ni.ID, Addr: ni.Kafka, Down: ni.ID != n.cfg.NodeID && n.q.down[ni.ID]})
		}
		for _, ti := range n.cat.Topics {
			kt := KafkaTopic{Replicas: slices.Clone(ti.Replicas)}
			if g := n.groups[ti.Group]; g != nil {
				kt.Leader = g.rn.BasicStatus().Lead
			}
			v.Topics[ti.Name] = kt
		}
		ch <- v
	}
	select {
	case n.doq <- f:
	case <-ctx.Done():
		return KafkaView{}, ctx.Err()
	case <-n.done:
		return KafkaView{}, unavailable("cluster: node stopped")
	}
	return <-ch, nil
}
