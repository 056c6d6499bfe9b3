package cluster

import (
	"context"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// Consumer groups are not replicated yet (their state must go through the
// topic's Raft group): a cluster refuses every group call with
// UnknownOpcode, as a broker without groups would, rather than keep group
// state on one node that a failover would lose.
var errGroups = netproto.NewError(netproto.CodeUnknownOpcode, "cluster: consumer groups are not replicated yet")

func (n *Node) CreateGroup(ctx context.Context, topic, group string, cfg engine.GroupConfig) (bool, error) {
	return false, errGroups
}

func (n *Node) JoinGroup(ctx context.Context, topic, group, name string) (engine.Member, error) {
	return engine.Member{}, errGroups
}

func (n *Node) LeaveGroup(ctx context.Context, topic, group string, m engine.Member) error {
	return errGroups
}

func (n *Node) GroupFetch(ctx context.Context, topic, group string, m engine.Member, max int, wait time.Duration) (engine.FetchResult, error) {
	return engine.FetchResult{}, errGroups
}

func (n *Node) GroupAck(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange) error {
	return errGroups
}

func (n *Node) GroupAckUpTo(ctx context.Context, topic, group string, m engine.Member, next uint64) error {
	return errGroups
}

func (n *Node) GroupNack(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange, delay time.Duration) error {
	return errGroups
}

func (n *Node) GroupReturn(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange) error {
	return errGroups
}

func (n *Node) GroupExtend(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange) error {
	return errGroups
}

func (n *Node) DescribeGroup(topic, group string) (engine.GroupInfo, error) {
	return engine.GroupInfo{}, errGroups
}

func (n *Node) ListGroups(topic string) ([]engine.GroupInfo, error) { return nil, errGroups }

func (n *Node) SeekGroup(ctx context.Context, topic, group string, pos engine.StartPosition) (uint64, error) {
	return 0, errGroups
}

func (n *Node) DeleteGroup(ctx context.Context, topic, group string) error { return errGroups }
