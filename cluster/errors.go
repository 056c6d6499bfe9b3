package cluster

import (
	"fmt"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/netproto"
)

// clusterError is a retriable error of the replicated log service, one
// value for every front end: the binary protocol's Storage code (the
// netproto error in it), engine.ErrStorage (retriable for the HTTP API and
// the Kafka listener) and its class, logsvc.ErrNotLeader or
// logsvc.ErrInDoubt, which those front ends answer more precisely (HTTP
// 503 naming the leader; Kafka NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR or
// REQUEST_TIMED_OUT).
type clusterError struct {
	class  error
	pe     *netproto.Error
	leader uint64
	addr   string
}

func (e *clusterError) Error() string   { return e.pe.Error() }
func (e *clusterError) Unwrap() []error { return []error{engine.ErrStorage, e.class, e.pe} }

// LeaderNode is the topic's leader (logsvc.LeaderHint): 0 when unknown.
func (e *clusterError) LeaderNode() (uint64, string) { return e.leader, e.addr }

// notLeader is an ErrNotLeader error naming the leader (0: unknown).
func (n *Node) notLeader(lead uint64, format string, a ...any) error {
	e := &clusterError{class: logsvc.ErrNotLeader, pe: netproto.NewError(netproto.CodeStorage, fmt.Sprintf(format, a...)), leader: lead}
	if v, ok := n.caddrs.Load(lead); ok && lead != 0 {
		e.addr = v.(string)
	}
	return e
}

// inDoubt is an ErrInDoubt error: a proposal not known committed.
func inDoubt(format string, a ...any) error {
	return &clusterError{class: logsvc.ErrInDoubt, pe: netproto.NewError(netproto.CodeStorage, fmt.Sprintf(format, a...))}
}
