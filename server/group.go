package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/topicname"
)

// Consumer groups on the wire (PROTOCOL.md, "Consumer groups"). The server
// reaches groups only through logsvc.Groups; these handlers decode, check
// names and bounds, call it, and encode. Every group request answers only
// itself: a body that does not decode ends the connection as for any
// opcode, every other error (unknown group, stale member, offsets not
// leased, limits) is one error frame and the connection goes on.

// group dispatches one group request; false ends the connection.
func (c *conn) group(h netproto.Header, body []byte) bool {
	switch h.Opcode {
	case netproto.OpGroupJoin:
		return c.groupJoin(h, body)
	case netproto.OpGroupFetch:
		return c.groupFetch(h, body)
	case netproto.OpGroupAck, netproto.OpGroupExtend:
		return c.groupAck(h, body)
	case netproto.OpGroupNack:
		return c.groupNack(h, body)
	case netproto.OpGroupCommit:
		return c.groupCommit(h, body)
	case netproto.OpGroupLeave:
		return c.groupLeave(h, body)
	}
	return c.groupAdmin(h, body)
}

// memberNames checks a member request's names and that the client may
// consume the topic (Options.Auth): every member request reads or moves
// the topic's messages.
func (c *conn) memberNames(group, topic []byte) (g, t string, err error) {
	g, t, err = groupNames(group, topic)
	if err == nil {
		err = c.authorize(auth.Consume, t)
	}
	return g, t, err
}

// groupNames checks a request's group and topic names before they reach
// the log: a bad name is BadTopicName, naming which of the two it is.
func groupNames(group, topic []byte) (g, t string, err error) {
	g, t = string(group), string(topic)
	if e := topicname.Check(g); e != nil {
		return "", "", netproto.NewError(netproto.CodeBadTopicName, "group name: "+e.Error()+" ("+topicname.Rule+")")
	}
	if e := topicname.Check(t); e != nil {
		return "", "", netproto.NewError(netproto.CodeBadTopicName, "topic name: "+e.Error()+" ("+topicname.Rule+")")
	}
	return g, t, nil
}

// millis converts a wire duration in milliseconds.
func millis(ms uint32) time.Duration { return time.Duration(ms) * time.Millisecond }

// startPosition converts a wire start kind and value.
func startPosition(kind uint8, value int64) engine.StartPosition {
	switch kind {
	case netproto.StartLatest:
		return engine.StartPosition{Kind: engine.StartLatest}
	case netproto.StartOffset:
		return engine.StartPosition{Kind: engine.StartOffset, Offset: uint64(value)}
	case netproto.StartTime:
		return engine.StartPosition{Kind: engine.StartTime, Time: time.Unix(0, value)}
	}
	return engine.StartPosition{Kind: engine.StartEarliest}
}

// ackWaitOf is a configuration's ack-wait after the default.
func ackWaitOf(cfg engine.GroupConfig) time.Duration {
	if cfg.AckWait <= 0 {
		return engine.DefaultAckWait
	}
	return cfg.AckWait
}

// configMismatch compares a join's configuration with the group's: the
// exclusive flag always, the other fields where the join gives them.
func configMismatch(req *netproto.GroupJoinRequest, have engine.GroupConfig) error {
	var diff string
	excl := req.Flags&netproto.JoinExclusive != 0
	switch {
	case excl != have.Exclusive:
		diff = fmt.Sprintf("exclusive %v, the group's is %v", excl, have.Exclusive)
	case req.AckWaitMillis != 0 && millis(req.AckWaitMillis) != ackWaitOf(have):
		diff = fmt.Sprintf("ack-wait %v, the group's is %v", millis(req.AckWaitMillis), ackWaitOf(have))
	case req.MaxDeliveries != 0 && int(req.MaxDeliveries) != have.MaxDeliveries:
		diff = fmt.Sprintf("max deliveries %d, the group's is %d", req.MaxDeliveries, have.MaxDeliveries)
	case len(req.DeadLetter) != 0 && string(req.DeadLetter) != have.DeadLetterTopic:
		diff = fmt.Sprintf("dead-letter topic %q, the group's is %q", req.DeadLetter, have.DeadLetterTopic)
	default:
		return nil
	}
	return netproto.NewError(netproto.CodeGroupConfigMismatch, "join asks for "+diff)
}

func (c *conn) groupJoin(h netproto.Header, body []byte) bool {
	var req netproto.GroupJoinRequest
	if err := req.Decode(body); err != nil {
		return c.decodeFailed(h, err)
	}
	resp, err := c.join(&req)
	return c.respond(h, &resp, err)
}

// join creates the group when asked and it is missing, checks the
// configuration of one that exists, and adds the member.
func (c *conn) join(req *netproto.GroupJoinRequest) (netproto.GroupJoinResponse, error) {
	var resp netproto.GroupJoinResponse
	group, topic, err := groupNames(req.Group, req.Topic)
	if err != nil {
		return resp, err
	}
	if err := c.authorize(auth.Consume, topic); err != nil {
		return resp, err
	}
	if len(req.DeadLetter) > 0 {
		if e := topicname.Check(string(req.DeadLetter)); e != nil {
			return resp, netproto.NewError(netproto.CodeBadTopicName, "dead-letter topic name: "+e.Error())
		}
		// The group will write dead letters there on this client's behalf.
		if err := c.authorize(auth.Produce, string(req.DeadLetter)); err != nil {
			return resp, err
		}
	}
	g := c.s.e
	info, err := g.DescribeGroup(topic, group)
	switch {
	case err == nil:
		if err := configMismatch(req, info.Config); err != nil {
			return resp, err
		}
	case errors.Is(err, engine.ErrGroupNotFound) && req.Flags&netproto.JoinCreate != 0:
		cfg := engine.GroupConfig{
			Exclusive:       req.Flags&netproto.JoinExclusive != 0,
			AckWait:         millis(req.AckWaitMillis),
			MaxDeliveries:   int(req.MaxDeliveries),
			DeadLetterTopic: string(req.DeadLetter),
			Start:           startPosition(req.StartKind, req.StartValue),
		}
		created, err := g.CreateGroup(c.ctx, topic, group, cfg)
		if err != nil {
			return resp, err
		}
		if created {
			resp.Flags |= netproto.JoinedCreated
			c.s.opts.Logger.Info("group created", "topic", topic, "group", group, "remote", remoteName(c.nc))
		}
	default:
		return resp, err
	}
	m, err := g.JoinGroup(c.ctx, topic, group, string(req.MemberName))
	if err != nil {
		return resp, err
	}
	resp.MemberID, resp.MemberEpoch = m.ID, m.Epoch
	if info, err = g.DescribeGroup(topic, group); err != nil {
		return resp, err
	}
	resp.Committed = info.Committed
	resp.AckWaitMillis = uint32(min(ackWaitOf(info.Config)/time.Millisecond, math.MaxUint32))
	resp.MaxDeliveries = uint32(min(info.Config.MaxDeliveries, math.MaxUint32))
	resp.DeadLetter = []byte(info.Config.DeadLetterTopic)
	if info.Config.Exclusive {
		resp.Flags |= netproto.JoinedExclusive
		for _, mi := range info.Members {
			if mi.ID == m.ID && mi.Holder {
				resp.Flags |= netproto.JoinedHolder
			}
		}
	}
	return resp, nil
}

func (c *conn) groupLeave(h netproto.Header, body []byte) bool {
	var req netproto.GroupLeaveRequest
	if err := req.Decode(body); err != nil {
		return c.decodeFailed(h, err)
	}
	group, topic, err := c.memberNames(req.Group, req.Topic)
	if err == nil {
		err = c.s.e.LeaveGroup(c.ctx, topic, group, engine.Member{ID: req.MemberID, Epoch: req.MemberEpoch})
	}
	return c.respond(h, &netproto.GroupLeaveResponse{}, err)
}

// tooManyRangesAt reads the u32 range count at off of an ack, nack or
// extend body and reports whether it names more ranges than a call may
// take while they fit in the body: such a request is refused (GroupLimit,
// the connection goes on) before anything is sized by its count. A count
// larger than the body is left to the decoder, which refuses it as
// Malformed without sizing anything by it.
func tooManyRangesAt(body []byte, off int) (uint32, bool) {
	if len(body) < off+4 {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(body[off:])
	return n, n > engine.MaxGroupRanges && uint64(n)*netproto.AckRangeSize <= uint64(len(body)-off-4)
}

// tooManyRanges refuses an ack, nack or extend past engine.MaxGroupRanges.
func tooManyRanges(n uint32) *netproto.Error {
	return netproto.NewError(netproto.CodeGroupLimit, fmt.Sprintf("%d ranges in one request, the limit is %d: send them in several", n, engine.MaxGroupRanges))
}

// offsetRanges converts wire ranges to the log's.
func offsetRanges(rs []netproto.AckRange) []engine.OffsetRange {
	if len(rs) == 0 {
		return nil
	}
	out := make([]engine.OffsetRange, len(rs))
	for i, r := range rs {
		out[i] = engine.OffsetRange{First: r.First, Next: r.End()}
	}
	return out
}

// groupAck answers GroupAck and GroupExtend, which share a body.
func (c *conn) groupAck(h netproto.Header, body []byte) bool {
	if n, over := tooManyRangesAt(body, 16); over {
		return c.writeError(h.Opcode, h.RequestID, tooManyRanges(n))
	}
	var req netproto.GroupAckRequest
	if err := req.Decode(body); err != nil {
		return c.decodeFailed(h, err)
	}
	group, topic, err := c.memberNames(req.Group, req.Topic)
	if err == nil {
		m := engine.Member{ID: req.MemberID, Epoch: req.MemberEpoch}
		if h.Opcode == netproto.OpGroupExtend {
			err = c.s.e.GroupExtend(c.ctx, topic, group, m, offsetRanges(req.Ranges))
		} else if len(req.Ranges) > 0 {
			err = c.s.e.GroupAck(c.ctx, topic, group, m, offsetRanges(req.Ranges))
		}
	}
	return c.respond(h, &netproto.GroupAckResponse{}, err)
}

func (c *conn) groupNack(h netproto.Header, body []byte) bool {
	if n, over := tooManyRangesAt(body, 20); over {
		return c.writeError(h.Opcode, h.RequestID, tooManyRanges(n))
	}
	var req netproto.GroupNackRequest
	if err := req.Decode(body); err != nil {
		return c.decodeFailed(h, err)
	}
	group, topic, err := c.memberNames(req.Group, req.Topic)
	if err == nil {
		m := engine.Member{ID: req.MemberID, Epoch: req.MemberEpoch}
		err = c.s.e.GroupNack(c.ctx, topic, group, m, offsetRanges(req.Ranges), millis(req.DelayMillis))
	}
	return c.respond(h, &netproto.GroupAckResponse{}, err)
}

func (c *conn) groupCommit(h netproto.Header, body []byte) bool {
	var req netproto.GroupCommitRequest
	if err := req.Decode(body); err != nil {
		return c.decodeFailed(h, err)
	}
	group, topic, err := c.memberNames(req.Group, req.Topic)
	if err == nil {
		m := engine.Member{ID: req.MemberID, Epoch: req.MemberEpoch}
		err = c.s.e.GroupAckUpTo(c.ctx, topic, group, m, req.Offset)
	}
	return c.respond(h, &netproto.GroupAckResponse{}, err)
}
