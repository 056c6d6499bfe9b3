package client

import (
	"context"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// GroupInfo is one group in ListGroups.
type GroupInfo struct {
	Topic, Group string
	// Committed: every message below it is done.
	Committed uint64
	// Lag counts the messages not done yet, in flight or not.
	Lag uint64
	// Members counts the members now.
	Members int
}

// GroupMember is a member of a group, in GroupDescription.
type GroupMember struct {
	ID       uint64
	Name     string
	InFlight uint64    // messages leased to it now
	LastSeen time.Time // its last call
	Holder   bool      // it holds the exclusive group (the others are standbys)
}

// GroupDescription is a group's state (DescribeGroup).
type GroupDescription struct {
	Topic, Group string
	// Committed: every message below it is done (acked, dead-lettered or
	// skipped).
	Committed uint64
	// Start and End are the topic's valid range.
	Start, End uint64
	// Lag = End - Committed - Acked: messages not done yet, InFlight of
	// them leased now.
	Lag, InFlight uint64
	// Acked counts the messages acked at or above Committed, not
	// contiguous with it yet.
	Acked uint64
	// Delivered: every message below it was delivered at least once.
	Delivered uint64
	// Redeliveries (deliveries after the first) and Expired (leases that
	// lapsed) count since the broker started; DeadLettered and Skipped
	// (removed by retention before they were done) since the group was
	// created.
	Redeliveries, Expired, DeadLettered, Skipped uint64
	// Epoch is the group's epoch (bumped by a seek or an exclusive
	// takeover).
	Epoch uint64
	// The group's configuration.
	Exclusive     bool
	AckWait       time.Duration
	MaxDeliveries int // 0: unlimited
	DeadLetter    string
	Members       []GroupMember
}

func checkGroup(group, topic string) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	if err := checkTopic(group); err != nil {
		e := *err.(*Error)
		e.Message = "group name: " + e.Message
		return &e
	}
	return nil
}

// ListGroups lists the groups of topic, or of every topic when topic is
// empty, sorted by topic and group.
func (c *Client) ListGroups(ctx context.Context, topic string) ([]GroupInfo, error) {
	if topic != "" {
		if err := checkTopic(topic); err != nil {
			return nil, err
		}
	}
	cl := getCall(netproto.OpGroupList)
	defer putCall(cl)
	req := netproto.GroupListRequest{Topic: []byte(topic)}
	cl.head = req.AppendTo(cl.head)
	if err := c.roundTrip(ctx, cl, nil); err != nil {
		return nil, err
	}
	var resp netproto.GroupListResponse
	if err := resp.Decode(cl.body); err != nil {
		return nil, err
	}
	out := make([]GroupInfo, len(resp.Groups))
	for i, g := range resp.Groups {
		out[i] = GroupInfo{Topic: string(g.Topic), Group: string(g.Group), Committed: g.Committed, Lag: g.Lag, Members: int(g.Members)}
	}
	return out, nil
}

// DescribeGroup returns the state of group on topic; ErrGroupNotFound if
// there is none.
func (c *Client) DescribeGroup(ctx context.Context, group, topic string) (GroupDescription, error) {
	if err := checkGroup(group, topic); err != nil {
		return GroupDescription{}, err
	}
	cl := getCall(netproto.OpGroupDescribe)
	defer putCall(cl)
	req := netproto.GroupRequest{Group: []byte(group), Topic: []byte(topic)}
	cl.head = req.AppendTo(cl.head)
	if err := c.roundTrip(ctx, cl, nil); err != nil {
		return GroupDescription{}, err
	}
	var r netproto.GroupDescribeResponse
	if err := r.Decode(cl.body); err != nil {
		return GroupDescription{}, err
	}
	d := GroupDescription{
		Topic: topic, Group: group, Committed: r.Committed, Start: r.Start, End: r.End,
		Lag: r.Lag, InFlight: r.InFlight, Acked: r.Acked, Delivered: r.Delivered,
		Redeliveries: r.Redeliveries, Expired: r.Expired, DeadLettered: r.DeadLettered,
		Skipped: r.Skipped, Epoch: r.Epoch, Exclusive: r.Exclusive,
		AckWait: time.Duration(r.AckWaitMillis) * time.Millisecond, MaxDeliveries: int(r.MaxDeliveries),
		DeadLetter: string(r.DeadLetter),
	}
	for _, m := range r.Members {
		gm := GroupMember{ID: m.ID, Name: string(m.Name), InFlight: m.InFlight, Holder: m.Holder}
		if m.LastSeen != 0 {
			gm.LastSeen = time.Unix(0, m.LastSeen)
		}
		d.Members = append(d.Members, gm)
	}
	return d, nil
}

// SeekGroup moves a group (an admin operation) to pos: its committed offset
// is set, acks above it are forgotten, and every lease is dropped (members
// fetch again from the new position). It returns the new committed offset.
func (c *Client) SeekGroup(ctx context.Context, group, topic string, pos GroupPosition) (uint64, error) {
	if err := checkGroup(group, topic); err != nil {
		return 0, err
	}
	req := netproto.GroupSeekRequest{Kind: pos.kind, Value: pos.value, Group: []byte(group), Topic: []byte(topic)}
	var resp netproto.GroupSeekResponse
	err := c.groupCall(ctx, topic, netproto.OpGroupSeek, &req, &resp)
	return resp.Committed, err
}

// DeleteGroup deletes a group and its stored progress (an admin
// operation).
func (c *Client) DeleteGroup(ctx context.Context, group, topic string) error {
	if err := checkGroup(group, topic); err != nil {
		return err
	}
	req := netproto.GroupRequest{Group: []byte(group), Topic: []byte(topic)}
	return c.groupCall(ctx, topic, netproto.OpGroupDelete, &req, &netproto.GroupDeleteResponse{})
}
