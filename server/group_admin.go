package server

import (
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/topicname"
)

// groupAdmin answers GroupDescribe, GroupList, GroupSeek and GroupDelete.
func (c *conn) groupAdmin(h netproto.Header, body []byte) bool {
	g := c.s.e
	switch h.Opcode {
	case netproto.OpGroupDescribe:
		var req netproto.GroupRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		group, topic, err := c.memberNames(req.Group, req.Topic)
		var info engine.GroupInfo
		if err == nil {
			info, err = g.DescribeGroup(topic, group)
		}
		return c.respond(h, describeResponse(&info), err)
	case netproto.OpGroupList:
		var req netproto.GroupListRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		resp, err := c.listGroups(string(req.Topic))
		return c.respond(h, resp, err)
	case netproto.OpGroupSeek:
		var req netproto.GroupSeekRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		group, topic, err := groupNames(req.Group, req.Topic)
		if err == nil {
			err = c.authorize(auth.Admin, topic)
		}
		var resp netproto.GroupSeekResponse
		if err == nil {
			resp.Committed, err = g.SeekGroup(c.ctx, topic, group, startPosition(req.Kind, req.Value))
		}
		if err == nil {
			c.s.opts.Logger.Info("group moved", "topic", topic, "group", group, "committed", resp.Committed, "remote", remoteName(c.nc))
		}
		return c.respond(h, &resp, err)
	case netproto.OpGroupDelete:
		var req netproto.GroupRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		group, topic, err := groupNames(req.Group, req.Topic)
		if err == nil {
			err = c.authorize(auth.Admin, topic)
		}
		if err == nil {
			err = g.DeleteGroup(c.ctx, topic, group)
		}
		if err == nil {
			c.s.opts.Logger.Info("group deleted", "topic", topic, "group", group, "remote", remoteName(c.nc))
		}
		return c.respond(h, &netproto.GroupDeleteResponse{}, err)
	}
	return c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeUnknownOpcode, h.Opcode.String()))
}

// describeResponse encodes a group's state.
func describeResponse(info *engine.GroupInfo) *netproto.GroupDescribeResponse {
	r := &netproto.GroupDescribeResponse{
		Committed: info.Committed, Start: info.Start, End: info.End, Lag: info.Lag,
		InFlight: info.InFlight, Acked: info.AckedAbove, Delivered: info.Delivered,
		Redeliveries: info.Redeliveries, Expired: info.Expired,
		DeadLettered: info.DeadLettered, Skipped: info.Skipped, Epoch: info.Epoch,
		AckWaitMillis: uint32(min(ackWaitOf(info.Config)/time.Millisecond, math.MaxUint32)),
		MaxDeliveries: uint32(min(max(info.Config.MaxDeliveries, 0), math.MaxUint32)),
		Exclusive:     info.Config.Exclusive,
		DeadLetter:    []byte(info.Config.DeadLetterTopic),
	}
	for _, m := range info.Members {
		var seen int64
		if !m.LastSeen.IsZero() {
			seen = m.LastSeen.UnixNano()
		}
		r.Members = append(r.Members, netproto.GroupMember{ID: m.ID, InFlight: m.InFlight, LastSeen: seen, Holder: m.Holder, Name: []byte(m.Name)})
	}
	return r
}

// listGroups lists the groups of topic, or of every topic when it is
// empty. A list that would not fit in one response frame is refused: list
// one topic at a time.
func (c *conn) listGroups(topic string) (*netproto.GroupListResponse, error) {
	topics := []string{topic}
	if topic == "" {
		topics = c.s.e.Topics("")
	} else if e := topicname.Check(topic); e != nil {
		return nil, netproto.NewError(netproto.CodeBadTopicName, "topic name: "+e.Error())
	} else if err := c.authorize(auth.Consume, topic); err != nil {
		return nil, err
	}
	resp := &netproto.GroupListResponse{}
	size := 4
	for _, t := range topics {
		if topic == "" && c.s.opts.Auth != nil && !c.s.opts.Auth.Allowed(c.principal, auth.Consume, t) {
			continue // a listing shows the groups of the topics the client may consume
		}
		infos, err := c.s.e.ListGroups(t)
		if err != nil {
			if topic == "" && errors.Is(err, engine.ErrTopicNotFound) {
				continue // deleted since it was listed
			}
			return nil, err
		}
		for _, info := range infos {
			size += 8 + 8 + 4 + 2 + len(t) + 2 + len(info.Name)
			if size > int(c.s.opts.MaxBody) {
				return nil, netproto.NewError(netproto.CodeGroupLimit, "more than "+strconv.Itoa(len(resp.Groups))+
					" groups do not fit in one response: list the groups of one topic at a time")
			}
			resp.Groups = append(resp.Groups, netproto.GroupInfo{
				Committed: info.Committed, Lag: info.Lag, Members: uint32(len(info.Members)),
				Topic: []byte(t), Group: []byte(info.Name),
			})
		}
	}
	return resp, nil
}
