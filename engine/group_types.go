package engine

import (
	"errors"
	"fmt"
	"time"
)

// Consumer groups (DESIGN.md, "Consumer groups"): a group is a durable,
// named cursor on one topic shared by its members. These are the types of
// the engine's group operations; logsvc.Groups is the interface the front
// ends use.

// Errors of the group operations. Test with errors.Is; they arrive wrapped
// with the topic, group, member and offsets they concern. None of them
// changed any state.
var (
	// ErrGroupNotFound: no group of that name on the topic (or the topic
	// is gone).
	ErrGroupNotFound = errors.New("engine: group not found")
	// ErrGroupExists: CreateGroup of a group that exists with a different
	// configuration (the same configuration is no error).
	ErrGroupExists = errors.New("engine: group exists with a different configuration")
	// ErrStaleMember: the member is unknown (never joined, left, or
	// expired after AckWait without a call), or its epoch is older than
	// the group's (the group was sought/reset, or in exclusive mode
	// another member took over), or it is an exclusive group's standby.
	// Its leases are gone; rejoin or fetch again.
	ErrStaleMember = errors.New("engine: stale group member")
	// ErrNotLeased: an ack, nack or extend names offsets that are not
	// leased to this member: never delivered, leased to another member,
	// or the lease expired and the offsets went back for redelivery.
	ErrNotLeased = errors.New("engine: offsets not leased to this member")
	// ErrGroupLimit: a limit was reached (groups per topic, members per
	// group, messages in flight per member, ranges per call). Retriable
	// once the group has less in flight or fewer members.
	ErrGroupLimit = errors.New("engine: group limit reached")
	// ErrBadGroupRequest: malformed input (a bad group name or config, an
	// empty or inverted range, an unknown start kind).
	ErrBadGroupRequest = errors.New("engine: bad group request")
)

// Group defaults and bounds.
const (
	DefaultAckWait = 30 * time.Second
	MinAckWait     = 10 * time.Millisecond
	MaxAckWait     = 24 * time.Hour
	// MaxGroupRanges bounds the ranges of one Ack, Nack or Extend call.
	MaxGroupRanges = 4096
	// MaxGroupFetch bounds the messages one Fetch leases.
	MaxGroupFetch = 1 << 20
)

// StartKind says where a new (or sought) group starts.
type StartKind uint8

const (
	// StartEarliest: the topic's start offset.
	StartEarliest StartKind = iota
	// StartLatest: the topic's end offset (only messages appended later).
	StartLatest
	// StartOffset: StartPosition.Offset, clamped into [start, end].
	StartOffset
	// StartTime: the first batch appended at or after StartPosition.Time
	// (the end offset when every batch is older).
	StartTime
)

func (k StartKind) String() string {
	switch k {
	case StartEarliest:
		return "earliest"
	case StartLatest:
		return "latest"
	case StartOffset:
		return "offset"
	case StartTime:
		return "time"
	}
	return fmt.Sprintf("start(%d)", uint8(k))
}

// StartPosition is where a group starts (CreateGroup) or is moved to
// (SeekGroup).
type StartPosition struct {
	Kind   StartKind
	Offset uint64    // StartOffset
	Time   time.Time // StartTime
}

// GroupConfig configures a group. The zero value is a shared group
// starting at the earliest offset, AckWait 30 s, unlimited deliveries.
type GroupConfig struct {
	// Exclusive: at most one member holds the group at a time; messages go
	// out strictly in offset order; the others are hot standbys that take
	// over (with a new epoch) when the holder makes no call for AckWait.
	Exclusive bool
	// AckWait is how long a lease lasts without an ack or an Extend, and
	// how long a member may stay silent before it is dropped (default
	// 30 s; MinAckWait..MaxAckWait).
	AckWait time.Duration
	// MaxDeliveries: a message delivered this many times without an ack is
	// dead-lettered instead of delivered again (0: unlimited).
	MaxDeliveries int
	// DeadLetterTopic receives dead-lettered messages (appended as they
	// were, one batch per range). Empty with MaxDeliveries set: they are
	// dropped, still counted in DeadLettered. It must exist when a message
	// is dead-lettered; until it does, the message stays undelivered.
	DeadLetterTopic string
	// Start is where a new group starts (not part of the comparison that
	// decides whether an existing group has "the same configuration").
	Start StartPosition
}

// Member identifies a member of a group in every call after JoinGroup:
// ID from JoinGroup, Epoch from the member's latest Fetch.
type Member struct {
	ID    uint64
	Epoch uint64
}

// OffsetRange is the offsets [First, Next).
type OffsetRange struct {
	First, Next uint64
}

// Len returns the number of offsets in the range.
func (r OffsetRange) Len() uint64 {
	if r.Next <= r.First {
		return 0
	}
	return r.Next - r.First
}

// Lease is a range of offsets delivered to one member: it must ack (or
// nack, or extend) them before Deadline, or they go back for redelivery.
type Lease struct {
	OffsetRange
	// Deliveries counts the deliveries of these messages, this one
	// included (1 the first time).
	Deliveries uint32
	Deadline   time.Time
}

// FetchResult is what a Fetch leased.
type FetchResult struct {
	// Epoch is the group's epoch; later Ack, Nack and Extend calls of the
	// member carry it (Member.Epoch).
	Epoch uint64
	// Leases in offset order (exclusive mode: contiguous from the lowest
	// offset not done). Read their messages with Read; keep only the
	// leased offsets of the batches read.
	Leases []Lease
	// Standby is set when the member is a standby of an exclusive group
	// whose holder is alive: nothing was leased.
	Standby bool
}

// MemberInfo describes a member.
type MemberInfo struct {
	ID       uint64
	Name     string // given at JoinGroup
	InFlight uint64 // messages leased to it
	LastSeen time.Time
	Holder   bool // the exclusive group's holder
}

// GroupInfo describes a group (Describe, List).
type GroupInfo struct {
	Topic, Name string
	Config      GroupConfig // Start as given at creation
	Epoch       uint64
	// Committed: every message below it is done (acked, dead-lettered or
	// skipped). Durable.
	Committed uint64
	// AckedAbove counts the messages at or above Committed that are acked
	// (durably), not yet contiguous with it.
	AckedAbove uint64
	// Start and End are the topic's range at the call.
	Start, End uint64
	// Lag counts the messages at or above Committed, below End, not acked:
	// End - Committed - AckedAbove. It includes InFlight.
	Lag uint64
	// InFlight counts the messages leased to members now.
	InFlight uint64
	// Delivered is the offset below which every message was delivered at
	// least once since the broker started (or, after a restart, Committed).
	Delivered uint64
	Members   []MemberInfo
	// Redeliveries counts deliveries after the first (since the broker
	// started); Expired counts leases that lapsed (since the broker
	// started).
	Redeliveries, Expired uint64
	// DeadLettered and Skipped are durable counters: messages moved to
	// the dead-letter topic (or dropped), and messages retention removed
	// before the group had them done.
	DeadLettered, Skipped uint64
}
