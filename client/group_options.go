package client

import (
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// GroupOption configures a GroupConsumer (NewGroupConsumer).
type GroupOption func(*groupConfig)

type groupConfig struct {
	autoAck       bool
	batchAcks     int           // acks sent together; 0: each Ack is sent and confirmed at once
	batchLinger   time.Duration // longest a batched ack waits
	exclusive     bool
	start         GroupPosition
	ackWait       time.Duration
	maxDeliveries uint32
	deadLetter    string
	fetchMax      uint32
	wait          time.Duration
	untilIdle     bool
	name          string
}

// defaultGroupFetchMax is how many messages a fetch asks for by default.
const defaultGroupFetchMax = 500

func applyGroupOptions(opts []GroupOption) groupConfig {
	cfg := groupConfig{fetchMax: defaultGroupFetchMax, wait: defaultFollowWait}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// GroupAutoAck acknowledges each message once the loop body it was yielded
// to returns (continues), unless the body already acked or nacked it. A
// body that breaks out of the loop leaves its message unacknowledged: it
// is delivered again after the ack-wait (or at once after Close).
func GroupAutoAck() GroupOption { return func(c *groupConfig) { c.autoAck = true } }

// GroupAckBatch sends acknowledgements together: Ack records the offset and
// returns at once, and the recorded acks go to the broker in one request
// when n are waiting, when the oldest has waited linger (0: 100 ms),
// before each fetch, and when the iteration ends, Flush or Close is
// called. Only then are they confirmed (durable on the broker); a batch
// that fails is yielded by Messages as an error (its messages are
// delivered again). Without it every Ack is one request, confirmed when
// Ack returns.
func GroupAckBatch(n int, linger time.Duration) GroupOption {
	return func(c *groupConfig) {
		if n > 0 {
			c.batchAcks = n
			c.batchLinger = linger
			if linger <= 0 {
				c.batchLinger = 100 * time.Millisecond
			}
		}
	}
}

// GroupExclusive asks for an exclusive group: one member at a time gets the
// messages, strictly in order; the others wait as hot standbys and take
// over when its leases lapse. It must match the group's mode when the
// group exists (else ErrGroupConfigMismatch).
func GroupExclusive() GroupOption { return func(c *groupConfig) { c.exclusive = true } }

// GroupStart sets where the group starts if this member creates it
// (default GroupEarliest()); an existing group keeps its position.
func GroupStart(p GroupPosition) GroupOption { return func(c *groupConfig) { c.start = p } }

// GroupAckWait sets the group's ack-wait when this member creates it
// (default 30 s on the broker): how long a delivered message stays leased
// before it goes to another member. When the group exists it must match.
func GroupAckWait(d time.Duration) GroupOption {
	return func(c *groupConfig) {
		if d > 0 {
			c.ackWait = d
		}
	}
}

// GroupMaxDeliveries sets how often a message is delivered without an ack
// before it is dead-lettered instead (default unlimited), when this member
// creates the group; when the group exists it must match.
func GroupMaxDeliveries(n int) GroupOption {
	return func(c *groupConfig) {
		if n > 0 {
			c.maxDeliveries = uint32(min(n, 1<<31))
		}
	}
}

// GroupDeadLetter names the topic that receives messages past
// GroupMaxDeliveries, when this member creates the group; when the group
// exists it must match.
func GroupDeadLetter(topic string) GroupOption { return func(c *groupConfig) { c.deadLetter = topic } }

// GroupFetchMax sets how many messages one fetch leases at most (default
// 500).
func GroupFetchMax(messages int) GroupOption {
	return func(c *groupConfig) {
		if messages > 0 {
			c.fetchMax = uint32(min(messages, 1<<20))
		}
	}
}

// GroupWait sets the long poll of a fetch when nothing is deliverable
// (default 10 s; the broker caps it).
func GroupWait(d time.Duration) GroupOption {
	return func(c *groupConfig) {
		if d > 0 {
			c.wait = d
		}
	}
}

// GroupUntilIdle ends the iteration when a fetch finds nothing to deliver
// within its wait (GroupWait): for a consumer that works off what is there
// and stops, instead of following the topic.
func GroupUntilIdle() GroupOption { return func(c *groupConfig) { c.untilIdle = true } }

// GroupMemberName names this member in DescribeGroup (default empty).
func GroupMemberName(name string) GroupOption { return func(c *groupConfig) { c.name = name } }

// GroupPosition is where a group starts (GroupStart) or is moved to
// (SeekGroup).
type GroupPosition struct {
	kind  uint8
	value int64
}

// GroupEarliest is the topic's first message.
func GroupEarliest() GroupPosition { return GroupPosition{kind: netproto.StartEarliest} }

// GroupLatest is the topic's end: only messages produced from then on.
func GroupLatest() GroupPosition { return GroupPosition{kind: netproto.StartLatest} }

// GroupOffset is an offset, clamped by the broker into the topic's range.
func GroupOffset(off uint64) GroupPosition {
	return GroupPosition{kind: netproto.StartOffset, value: int64(off)}
}

// GroupTime is the first message appended at or after t.
func GroupTime(t time.Time) GroupPosition {
	return GroupPosition{kind: netproto.StartTime, value: unixNanoOrOne(t)}
}
