package cluster

import (
	"context"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// The consumer-group calls (logsvc.Groups). The topic's leader runs them on
// its engine once it coordinates the groups (groups_apply.go); another
// replica refuses them with a retriable Storage error naming the leader.
// DescribeGroup and ListGroups are answered by any replica, from its copy
// of the durable state (a replica that does not coordinate has no members
// and nothing in flight to show).

var errGroups = netproto.NewError(netproto.CodeUnknownOpcode, "cluster: consumer groups need the broker's group relay (cluster.Config.Relay)")

// coordinator checks that this node coordinates topic's groups.
func (n *Node) coordinator(topic string) error {
	if n.cfg.Relay == nil {
		return errGroups
	}
	ti, err := n.topic(topic)
	if err != nil {
		return err
	}
	if _, ok := n.coordinating(ti); !ok {
		return n.notCoordinator(ti)
	}
	return nil
}

func (n *Node) CreateGroup(ctx context.Context, topic, group string, cfg engine.GroupConfig) (bool, error) {
	if err := n.coordinator(topic); err != nil {
		return false, err
	}
	return n.e.CreateGroup(ctx, topic, group, cfg)
}

func (n *Node) JoinGroup(ctx context.Context, topic, group, name string) (engine.Member, error) {
	if err := n.coordinator(topic); err != nil {
		return engine.Member{}, err
	}
	return n.e.JoinGroup(ctx, topic, group, name)
}

func (n *Node) LeaveGroup(ctx context.Context, topic, group string, m engine.Member) error {
	if err := n.coordinator(topic); err != nil {
		return err
	}
	return n.e.LeaveGroup(ctx, topic, group, m)
}

func (n *Node) GroupFetch(ctx context.Context, topic, group string, m engine.Member, max int, wait time.Duration) (engine.FetchResult, error) {
	if err := n.coordinator(topic); err != nil {
		return engine.FetchResult{}, err
	}
	return n.e.GroupFetch(ctx, topic, group, m, max, wait)
}

func (n *Node) GroupAck(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange) error {
	if err := n.coordinator(topic); err != nil {
		return err
	}
	return n.e.GroupAck(ctx, topic, group, m, ranges)
}

func (n *Node) GroupAckUpTo(ctx context.Context, topic, group string, m engine.Member, next uint64) error {
	if err := n.coordinator(topic); err != nil {
		return err
	}
	return n.e.GroupAckUpTo(ctx, topic, group, m, next)
}

func (n *Node) GroupNack(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange, delay time.Duration) error {
	if err := n.coordinator(topic); err != nil {
		return err
	}
	return n.e.GroupNack(ctx, topic, group, m, ranges, delay)
}

func (n *Node) GroupReturn(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange) error {
	if err := n.coordinator(topic); err != nil {
		return err
	}
	return n.e.GroupReturn(ctx, topic, group, m, ranges)
}

func (n *Node) GroupExtend(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange) error {
	if err := n.coordinator(topic); err != nil {
		return err
	}
	return n.e.GroupExtend(ctx, topic, group, m, ranges)
}

func (n *Node) DescribeGroup(topic, group string) (engine.GroupInfo, error) {
	if n.cfg.Relay == nil {
		return engine.GroupInfo{}, errGroups
	}
	if _, err := n.topic(topic); err != nil {
		return engine.GroupInfo{}, err
	}
	return n.e.DescribeGroup(topic, group)
}

func (n *Node) ListGroups(topic string) ([]engine.GroupInfo, error) {
	if n.cfg.Relay == nil {
		return nil, errGroups
	}
	if _, err := n.topic(topic); err != nil {
		return nil, err
	}
	return n.e.ListGroups(topic)
}

func (n *Node) SeekGroup(ctx context.Context, topic, group string, pos engine.StartPosition) (uint64, error) {
	if err := n.coordinator(topic); err != nil {
		return 0, err
	}
	return n.e.SeekGroup(ctx, topic, group, pos)
}

func (n *Node) DeleteGroup(ctx context.Context, topic, group string) error {
	if err := n.coordinator(topic); err != nil {
		return err
	}
	return n.e.DeleteGroup(ctx, topic, group)
}
