package logsvc

import "errors"

// Errors a replicated log service (package cluster) adds to the engine's.
// Each arrives wrapped together with engine.ErrStorage (retriable; a front
// end that knows nothing of these still answers a retriable error), so
// front ends test them first to answer more precisely.
var (
	// ErrNotLeader: this node cannot serve the request now (it is not a
	// replica of the topic, no leader of the topic is known, or it does
	// not lead the topic where the leader must answer). Nothing was done;
	// the request may be retried, here or on the leader.
	ErrNotLeader = errors.New("logsvc: not the topic's leader")
	// ErrInDoubt: a produce was not known committed within the node's
	// proposal timeout (no leader, or no majority reachable). It may still
	// be stored; a retry without a producer id may store it twice.
	ErrInDoubt = errors.New("logsvc: not known committed in time; it may still be stored")
)

// LeaderHint is implemented by an ErrNotLeader error that knows the
// topic's leader: its node id and, when known, the address of its native
// listener.
type LeaderHint interface {
	LeaderNode() (id uint64, addr string)
}

// A Linearizable service answers LatestOffsets with an end at or past
// every offset it acknowledged to a producer before the call (a
// replicated log whose replica may lag its cluster: package cluster
// passes a Raft read barrier first, which costs a quorum round trip; its
// Offsets answers from the replica at once, for internal checks that can
// take a lagging end). Its errors are Offsets' errors, or a retriable one
// when the barrier cannot pass in time.
type Linearizable interface {
	LatestOffsets(topic string) (start, end uint64, err error)
}

// LatestOffsets is svc's LatestOffsets when it has one, otherwise its
// Offsets (one node: the engine's end is every acknowledged offset).
// Front ends answer a client that asks for a topic's range (an Offsets
// request, Kafka ListOffsets, a topic's description) with it.
func LatestOffsets(svc Reader, topic string) (start, end uint64, err error) {
	if l, ok := svc.(Linearizable); ok {
		return l.LatestOffsets(topic)
	}
	return svc.Offsets(topic)
}
