package logsvc

import (
	"context"
	"time"

	"github.com/haraqa/haraqa/engine"
)

// Groups are consumer groups: durable, named cursors on a topic whose
// members share the topic's messages with leases, acks and redelivery
// (DESIGN.md, "Consumer groups", has the semantics; FORMAT.md the
// group-state records). The types and errors are the engine's:
// engine.GroupConfig, engine.StartPosition, engine.Member,
// engine.OffsetRange, engine.Lease, engine.FetchResult, engine.GroupInfo;
// engine.ErrGroupNotFound, ErrGroupExists, ErrStaleMember, ErrNotLeased,
// ErrGroupLimit, ErrBadGroupRequest, plus the topic errors
// (ErrTopicNotFound, ErrBadTopicName) and the storage errors (ErrStorage,
// ErrResource: retriable, nothing done). A call that fails changed
// nothing.
//
// A front end's consumer loop:
//
//	CreateGroup (idempotent) → JoinGroup → loop { GroupFetch → Read the
//	leased ranges, keep only the leased offsets of the batches read →
//	process → GroupAck / GroupNack / GroupExtend } → LeaveGroup
//
// group names follow the topic-name rule (topicname.Check). Every method
// is safe for concurrent use.
type Groups interface {
	// CreateGroup creates group on topic, starting at cfg.Start. It returns
	// created=false and no error when the group exists with the same
	// configuration (Exclusive, AckWait, MaxDeliveries, DeadLetterTopic
	// after defaults; Start is not compared), and ErrGroupExists when it
	// exists with another. The creation is durable before it returns.
	CreateGroup(ctx context.Context, topic, group string, cfg engine.GroupConfig) (created bool, err error)
	// JoinGroup adds a member (name is for Describe only, may be empty)
	// and returns its id with the group's epoch. In an exclusive group
	// the first member to fetch while no holder is alive becomes the
	// holder; the others are standbys.
	JoinGroup(ctx context.Context, topic, group, name string) (engine.Member, error)
	// LeaveGroup removes the member; its leases go back for redelivery at
	// once (an exclusive group's holder: a standby takes over at once).
	LeaveGroup(ctx context.Context, topic, group string, m engine.Member) error

	// GroupFetch leases up to max messages to member m (m.Epoch is not
	// checked: the result carries the current one). First messages due
	// for redelivery (nacked past their delay, or whose lease expired),
	// then new ones, in offset order. When nothing is deliverable it waits
	// up to wait (or ctx) for new messages, a redelivery, or (standby of
	// an exclusive group) a takeover; an empty result is no error. Past
	// MaxDeliveries, messages are dead-lettered here instead of leased.
	// ErrGroupLimit when m already has the in-flight limit leased.
	GroupFetch(ctx context.Context, topic, group string, m engine.Member, max int, wait time.Duration) (engine.FetchResult, error)
	// GroupAck marks the ranges done. Every offset must be leased to m
	// under m.Epoch, or already acked (acking twice is no error, so a
	// retried ack succeeds); otherwise ErrNotLeased (ErrStaleMember for
	// an unknown member or an old epoch) and nothing is acked. It returns
	// once the ack is durable per the fsync policy on every volume;
	// concurrent acks share one write and sync.
	GroupAck(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange) error
	// GroupAckUpTo acks every offset below next leased to m ("everything
	// up to N"; no error when there is none), durably like GroupAck.
	GroupAckUpTo(ctx context.Context, topic, group string, m engine.Member, next uint64) error
	// GroupNack releases leased offsets (nil ranges: all of m's leases) for
	// redelivery to any member once delay has passed (exclusive: the
	// nacked offsets and every lease above them, redelivered in order).
	GroupNack(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange, delay time.Duration) error
	// GroupReturn gives leased offsets back at once without counting the
	// lease as a delivery (a front end that leased messages it could not
	// send): redelivered to any member with their count as before.
	GroupReturn(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange) error
	// GroupExtend restarts the ack-wait of leased offsets (nil ranges: all
	// of m's leases): "in progress".
	GroupExtend(ctx context.Context, topic, group string, m engine.Member, ranges []engine.OffsetRange) error

	// DescribeGroup returns the group's state: committed offset, lag,
	// members, in flight, counters.
	DescribeGroup(topic, group string) (engine.GroupInfo, error)
	// ListGroups describes every group of the topic, sorted by name.
	ListGroups(topic string) ([]engine.GroupInfo, error)
	// SeekGroup moves the group to pos (admin): committed offset set,
	// acks above it forgotten, every lease dropped, epoch bumped (members
	// must fetch again; their old leases' acks get ErrStaleMember).
	// Durable before it returns; returns the new committed offset.
	SeekGroup(ctx context.Context, topic, group string, pos engine.StartPosition) (uint64, error)
	// DeleteGroup deletes the group (admin), durably. Deleting a topic
	// deletes its groups.
	DeleteGroup(ctx context.Context, topic, group string) error
}
