package kafka

import (
	"context"
	"errors"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/topicname"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupService is what the group APIs need of the log service.
type groupService = logsvc.Groups

func groupsOf(svc logsvc.Service) groupService { return svc }

func addGroupAPIs(m map[int16]api) {
	m[kmsg.FindCoordinator.Int16()] = api{min: 0, max: 6, groups: true, fn: handleFindCoordinator}
	m[kmsg.JoinGroup.Int16()] = api{min: 0, max: 9, groups: true, fn: handleJoinGroup}
	m[kmsg.SyncGroup.Int16()] = api{min: 0, max: 5, groups: true, fn: handleSyncGroup}
	m[kmsg.Heartbeat.Int16()] = api{min: 0, max: 4, groups: true, fn: handleHeartbeat}
	m[kmsg.LeaveGroup.Int16()] = api{min: 0, max: 5, groups: true, fn: handleLeaveGroup}
	m[kmsg.OffsetCommit.Int16()] = api{min: 0, max: 9, groups: true, fn: handleOffsetCommit}
	m[kmsg.OffsetFetch.Int16()] = api{min: 0, max: 9, groups: true, fn: handleOffsetFetch}
	m[kmsg.ListGroups.Int16()] = api{min: 0, max: 5, groups: true, fn: handleListGroups}
	m[kmsg.DescribeGroups.Int16()] = api{min: 0, max: 6, groups: true, fn: handleDescribeGroups}
}

func handleFindCoordinator(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.FindCoordinatorRequest)
	resp := kmsg.NewPtrFindCoordinatorResponse()
	host, port := c.advertised()
	code := errNone
	var msg *string
	if req.CoordinatorType != 0 {
		// Not retriable (COORDINATOR_NOT_AVAILABLE would have a
		// transactional client ask forever): transactions are not served.
		code, msg = errTransactionalIDAuth, kmsg.StringPtr("haraqa serves no transactions")
	}
	resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = code, msg, c.s.opts.NodeID, host, port
	for _, k := range req.CoordinatorKeys {
		co := kmsg.NewFindCoordinatorResponseCoordinator()
		co.Key, co.NodeID, co.Host, co.Port, co.ErrorCode, co.ErrorMessage = k, c.s.opts.NodeID, host, port, code, msg
		resp.Coordinators = append(resp.Coordinators, co)
	}
	c.finish(sl, h, resp)
}

func clampTimeout(ms int32, def time.Duration) time.Duration {
	if ms <= 0 {
		return def
	}
	return min(max(time.Duration(ms)*time.Millisecond, minSessionTimout), maxSessionTimout)
}

func handleJoinGroup(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.JoinGroupRequest)
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.MemberID = req.MemberID
	co := c.s.coord
	fail := func(code int16) { resp.ErrorCode = code; c.finish(sl, h, resp) }
	if topicname.Check(req.Group) != nil {
		fail(errInvalidGroupID)
		return
	}
	if len(req.Protocols) == 0 || req.ProtocolType == "" {
		fail(errInconsistentGroupProtocol)
		return
	}
	if req.SessionTimeoutMillis < int32(minSessionTimout/time.Millisecond) || req.SessionTimeoutMillis > int32(maxSessionTimout/time.Millisecond) {
		fail(errInvalidSessionTimeout)
		return
	}
	if c.s.opts.Auth != nil && !c.mayJoin(req) {
		fail(errGroupAuthorization)
		return
	}
	co.mu.Lock()
	g := co.groups[req.Group]
	if g == nil {
		// Entered in co.groups only once a member is added: a refused
		// join leaves nothing behind.
		g = &group{name: req.Group, state: stateEmpty, members: map[string]*member{}}
	}
	var protos []protocol
	for _, p := range req.Protocols {
		protos = append(protos, protocol{p.Name, p.Metadata})
	}
	if len(g.members) > 0 && (g.protocolType != req.ProtocolType || !compatible(g, protos)) {
		co.mu.Unlock()
		fail(errInconsistentGroupProtocol)
		return
	}
	m := g.members[req.MemberID]
	if req.MemberID != "" && m == nil {
		co.mu.Unlock()
		fail(errUnknownMemberID)
		return
	}
	held := co.heldBytes()
	if m != nil {
		held -= protocolBytes(m.protocols) // replaced by this join's
	}
	if held+protocolBytes(protos) > c.s.opts.MaxGroupBytes {
		co.mu.Unlock()
		fail(errGroupMaxSizeReached)
		return
	}
	if m == nil {
		if co.memberCount() >= c.s.opts.MaxGroupMembers {
			co.mu.Unlock()
			fail(errGroupMaxSizeReached)
			return
		}
		co.groups[req.Group] = g
		m = &member{id: newMemberID(h.clientID)}
		g.members[m.id] = m
		if g.leader == "" {
			g.leader = m.id
		}
	}
	if m.joinWait != nil { // a second JoinGroup replaces the first
		m.joinWait <- joinResult{code: errRebalanceInProgress}
	}
	g.protocolType = req.ProtocolType
	m.clientID, m.host, m.instanceID, m.protocols = h.clientID, c.remoteHost(), req.InstanceID, protos
	m.session = clampTimeout(req.SessionTimeoutMillis, 10*time.Second)
	m.rebalance = clampTimeout(req.RebalanceTimeoutMillis, m.session)
	co.rebalance(g) // every member must join again (this one is doing so)
	m.seen, m.joined = time.Now(), true
	wait := make(chan joinResult, 1)
	m.joinWait = wait
	id := m.id
	co.maybeCompleteJoin(g)
	co.mu.Unlock()
	c.later(sl, h, func() kmsg.Response {
		var res joinResult
		select {
		case res = <-wait:
		case <-c.ctx.Done():
			co.mu.Lock()
			if m.joinWait == wait {
				m.joinWait = nil
			}
			co.mu.Unlock()
			res.code = errRebalanceInProgress
		}
		resp.MemberID = id
		resp.ErrorCode = res.code
		if res.code != errNone {
			return resp
		}
		resp.Generation, resp.LeaderID = res.generation, res.leader
		resp.Protocol, resp.ProtocolType = kmsg.StringPtr(res.protocol), kmsg.StringPtr(req.ProtocolType)
		for _, mm := range res.members {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID, jm.InstanceID = mm.id, mm.instanceID
			for _, p := range mm.protocols {
				if p.name == res.protocol {
					jm.ProtocolMetadata = p.metadata
				}
			}
			resp.Members = append(resp.Members, jm)
		}
		return resp
	})
}

// check finds a member of a group at a generation, as SyncGroup,
// Heartbeat and OffsetCommit require. Called with co.mu held.
func (co *coordinator) check(groupName, memberID string, generation int32) (*group, *member, int16) {
	g := co.groups[groupName]
	if g == nil {
		return nil, nil, errUnknownMemberID
	}
	m := g.members[memberID]
	switch {
	case m == nil:
		return g, nil, errUnknownMemberID
	case generation != g.generation:
		return g, m, errIllegalGeneration
	case g.state == statePreparing:
		m.seen = time.Now()
		return g, m, errRebalanceInProgress
	}
	m.seen = time.Now()
	return g, m, errNone
}

func handleSyncGroup(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.SyncGroupRequest)
	resp := kmsg.NewPtrSyncGroupResponse()
	co := c.s.coord
	co.mu.Lock()
	g, m, code := co.check(req.Group, req.MemberID, req.Generation)
	if code != errNone {
		co.mu.Unlock()
		resp.ErrorCode = code
		c.finish(sl, h, resp)
		return
	}
	resp.ProtocolType, resp.Protocol = kmsg.StringPtr(g.protocolType), kmsg.StringPtr(g.protocol)
	if g.state == stateStable {
		resp.MemberAssignment = m.assignment
		co.mu.Unlock()
		c.finish(sl, h, resp)
		return
	}
	wait := make(chan syncResult, 1)
	m.syncWait = wait
	if m.id == g.leader {
		held, add := co.heldBytes(), 0
		for _, mm := range g.members {
			held -= len(mm.assignment) // replaced by this sync's
		}
		for _, a := range req.GroupAssignment {
			if g.members[a.MemberID] != nil {
				add += len(a.MemberAssignment)
			}
		}
		if held+add > c.s.opts.MaxGroupBytes {
			m.syncWait = nil
			co.mu.Unlock()
			resp.ErrorCode = errGroupMaxSizeReached
			c.finish(sl, h, resp)
			return
		}
		for _, a := range req.GroupAssignment {
			if mm := g.members[a.MemberID]; mm != nil {
				mm.assignment = a.MemberAssignment
			}
		}
		g.state = stateStable
		for _, mm := range g.members {
			if mm.syncWait != nil {
				mm.syncWait <- syncResult{assignment: mm.assignment}
				mm.syncWait = nil
			}
		}
	}
	co.mu.Unlock()
	c.later(sl, h, func() kmsg.Response {
		select {
		case res := <-wait:
			resp.ErrorCode, resp.MemberAssignment = res.code, res.assignment
		case <-c.ctx.Done():
			resp.ErrorCode = errRebalanceInProgress
		}
		return resp
	})
}

func handleHeartbeat(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.HeartbeatRequest)
	resp := kmsg.NewPtrHeartbeatResponse()
	co := c.s.coord
	co.mu.Lock()
	_, _, resp.ErrorCode = co.check(req.Group, req.MemberID, req.Generation)
	co.mu.Unlock()
	c.finish(sl, h, resp)
}

func handleLeaveGroup(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.LeaveGroupRequest)
	resp := kmsg.NewPtrLeaveGroupResponse()
	co := c.s.coord
	members := req.Members
	if req.MemberID != "" {
		members = append(members, kmsg.LeaveGroupRequestMember{MemberID: req.MemberID})
	}
	co.mu.Lock()
	g := co.groups[req.Group]
	for _, lm := range members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		if g == nil || g.members[lm.MemberID] == nil {
			rm.ErrorCode = errUnknownMemberID
			if h.version < 3 {
				resp.ErrorCode = errUnknownMemberID
			}
		} else {
			co.remove(g, lm.MemberID)
		}
		resp.Members = append(resp.Members, rm)
	}
	co.mu.Unlock()
	c.finish(sl, h, resp)
}

// OffsetCommit stores each partition's offset as the committed offset of
// the haraqa consumer group of the same name on the topic (exclusive
// mode), created at the first commit: a seek, durable before the answer.
func handleOffsetCommit(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.OffsetCommitRequest)
	resp := kmsg.NewPtrOffsetCommitResponse()
	code := errNone
	if topicname.Check(req.Group) != nil {
		code = errInvalidGroupID
	} else if req.Generation >= 0 || req.MemberID != "" {
		// A member's commit must come from the current generation; a
		// "simple" commit (generation -1, no member) is always taken.
		co := c.s.coord
		co.mu.Lock()
		var g *group
		g, _, code = co.check(req.Group, req.MemberID, req.Generation)
		switch {
		case code == errRebalanceInProgress && g.state == statePreparing:
			// As Kafka: a member of the generation ending may still commit
			// what it processed before it joins again.
			code = errNone
		case code == errNone && g.state == stateCompleting:
			code = errRebalanceInProgress
		}
		co.mu.Unlock()
	}
	type item struct {
		rp     *kmsg.OffsetCommitResponseTopicPartition
		topic  string
		offset int64
	}
	var items []item
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(t.Partitions))
		for i, p := range t.Partitions {
			rp := &rt.Partitions[i]
			rp.Default()
			rp.Partition = p.Partition
			switch {
			case code != errNone:
				rp.ErrorCode = code
			case !c.may(auth.Consume, t.Topic):
				rp.ErrorCode = errTopicAuthorization
			case p.Partition != partition:
				rp.ErrorCode = errUnknownTopicOrPartition
			case p.Offset < 0:
				rp.ErrorCode = errInvalidRequest
			default:
				items = append(items, item{rp, t.Topic, p.Offset})
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	c.later(sl, h, func() kmsg.Response {
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		for _, it := range items {
			it.rp.ErrorCode = c.commit(ctx, it.topic, req.Group, uint64(it.offset))
		}
		return resp
	})
}

// kafkaGroupConfig is the haraqa group a Kafka group's commits go to.
var kafkaGroupConfig = engine.GroupConfig{Exclusive: true}

func (c *conn) commit(ctx context.Context, topic, group string, offset uint64) int16 {
	_, err := c.s.groups.CreateGroup(ctx, topic, group, kafkaGroupConfig)
	switch {
	case errors.Is(err, engine.ErrGroupExists):
		// A haraqa group of another configuration (not a Kafka group's):
		// the commit would seek it, which natively needs admin.
		if !c.may(auth.Admin, topic) {
			return errGroupAuthorization
		}
	case err != nil:
		return groupCode(err)
	}
	if _, err := c.s.groups.SeekGroup(ctx, topic, group, engine.StartPosition{Kind: engine.StartOffset, Offset: offset}); err != nil {
		return groupCode(err)
	}
	return errNone
}

func groupCode(err error) int16 {
	switch {
	case errors.Is(err, engine.ErrBadGroupRequest):
		return errInvalidGroupID
	case errors.Is(err, engine.ErrGroupLimit):
		return errKafkaStorage
	case errors.Is(err, logsvc.ErrNotLeader):
		// In a cluster, the topic's leader runs its groups: clients ask
		// FindCoordinator again.
		return errNotCoordinator
	}
	return codeOf(err)
}

// committed returns the Kafka group's committed offset on topic, -1 when
// it has none.
func (c *conn) committed(topic, group string) (int64, int16) {
	info, err := c.s.groups.DescribeGroup(topic, group)
	switch {
	case errors.Is(err, engine.ErrGroupNotFound):
		return -1, errNone
	case err != nil:
		return -1, groupCode(err)
	}
	return int64(info.Committed), errNone
}

// topicsOfGroup lists the topics that hold a haraqa group of that name.
func (c *conn) topicsOfGroup(group string) []string {
	var out []string
	for _, t := range c.s.svc.Topics("") {
		if _, err := c.s.groups.DescribeGroup(t, group); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// consumableTopicsOfGroup is topicsOfGroup less the topics the client
// may not consume: an OffsetFetch of all a group's topics does not name
// the others.
func (c *conn) consumableTopicsOfGroup(group string) []string {
	var out []string
	for _, t := range c.topicsOfGroup(group) {
		if c.may(auth.Consume, t) {
			out = append(out, t)
		}
	}
	return out
}

func handleOffsetFetch(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.OffsetFetchRequest)
	resp := kmsg.NewPtrOffsetFetchResponse()
	if h.version < 8 {
		var topics []string
		parts := map[string][]int32{}
		if req.Topics == nil {
			topics = c.consumableTopicsOfGroup(req.Group)
		}
		for _, t := range req.Topics {
			topics = append(topics, t.Topic)
			parts[t.Topic] = t.Partitions
		}
		for _, t := range topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t
			ps, ok := parts[t]
			if !ok {
				ps = []int32{partition}
			}
			for _, p := range ps {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset = p, -1
				switch {
				case !c.may(auth.Consume, t):
					rp.ErrorCode = errTopicAuthorization
				case p != partition:
					rp.ErrorCode = errUnknownTopicOrPartition
				default:
					rp.Offset, rp.ErrorCode = c.committed(t, req.Group)
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		c.finish(sl, h, resp)
		return
	}
	for _, g := range req.Groups {
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group = g.Group
		var topics []kmsg.OffsetFetchRequestGroupTopic
		if g.Topics == nil {
			for _, t := range c.consumableTopicsOfGroup(g.Group) {
				topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t, Partitions: []int32{partition}})
			}
		}
		topics = append(topics, g.Topics...)
		for _, t := range topics {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset = p, -1
				switch {
				case !c.may(auth.Consume, t.Topic):
					rp.ErrorCode = errTopicAuthorization
				case p != partition:
					rp.ErrorCode = errUnknownTopicOrPartition
				default:
					rp.Offset, rp.ErrorCode = c.committed(t.Topic, g.Group)
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			rg.Topics = append(rg.Topics, rt)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	c.finish(sl, h, resp)
}

// ListGroups lists the Kafka groups this listener coordinates (those
// with members) and every haraqa group that holds Kafka
// commits.
func handleListGroups(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.ListGroupsRequest)
	resp := kmsg.NewPtrListGroupsResponse()
	seen := map[string]bool{}
	add := func(name, state string) {
		if seen[name] {
			return
		}
		seen[name] = true
		if len(req.StatesFilter) > 0 && !contains(req.StatesFilter, state) {
			return
		}
		if len(req.TypesFilter) > 0 && !contains(req.TypesFilter, "classic") {
			return
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = name, "consumer", state, "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	co := c.s.coord
	live := map[string]string{} // group → state
	co.mu.Lock()
	for name, g := range co.groups {
		live[name] = g.state
	}
	co.mu.Unlock()
	var stored []string                // in the order found
	committed := map[string][]string{} // group → the topics of its commits
	for _, t := range c.s.svc.Topics("") {
		infos, err := c.s.groups.ListGroups(t)
		if err != nil {
			continue
		}
		for _, gi := range infos {
			if gi.Config.Exclusive {
				if committed[gi.Name] == nil {
					stored = append(stored, gi.Name)
				}
				committed[gi.Name] = append(committed[gi.Name], t)
			}
		}
	}
	for name, state := range live {
		if c.mayGroup(name, committed[name]) {
			add(name, state)
		}
	}
	for _, name := range stored {
		if c.mayGroup(name, committed[name]) {
			add(name, stateEmpty)
		}
	}
	c.finish(sl, h, resp)
}

// mayJoin reports whether the client may join a group (Options.Auth):
// it may consume every topic its consumer-protocol subscriptions name
// (a protocol that names none is refused: what it reads is unknown),
// and a group that exists (members or commits) must be one it may see
// (mayGroup). Else any client could join any group, force a rebalance
// and be handed the partition the members were reading.
func (c *conn) mayJoin(req *kmsg.JoinGroupRequest) bool {
	for _, p := range req.Protocols {
		md := kmsg.NewConsumerMemberMetadata()
		if md.ReadFrom(p.Metadata) != nil || len(md.Topics) == 0 {
			return false
		}
		for _, t := range md.Topics {
			if !c.may(auth.Consume, t) {
				return false
			}
		}
	}
	committed := c.topicsOfGroup(req.Group)
	if len(committed) == 0 && len(c.s.coord.subscribed(req.Group)) == 0 {
		return true // a new group
	}
	return c.mayGroup(req.Group, committed)
}

// mayGroup reports whether the client may see a Kafka group (always
// without Options.Auth): it may consume a topic the group's commits are
// on (committed) or one its members subscribe to, as the native
// listener shows the groups of the topics a client may consume.
func (c *conn) mayGroup(name string, committed []string) bool {
	if c.s.opts.Auth == nil {
		return true
	}
	for _, t := range committed {
		if c.may(auth.Consume, t) {
			return true
		}
	}
	for _, t := range c.s.coord.subscribed(name) {
		if c.may(auth.Consume, t) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func handleDescribeGroups(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.DescribeGroupsRequest)
	resp := kmsg.NewPtrDescribeGroupsResponse()
	co := c.s.coord
	// A group with commits but no members here (after a restart) is
	// Empty, as Kafka says of a group that has only offsets.
	// With Options.Auth a group the client may not see (mayGroup) is
	// answered GROUP_AUTHORIZATION_FAILED and nothing else.
	stored, hidden := map[string]bool{}, map[string]bool{}
	for _, name := range req.Groups {
		co.mu.Lock()
		g := co.groups[name]
		members := g != nil && len(g.members) > 0
		co.mu.Unlock()
		var topics []string
		if !members || c.s.opts.Auth != nil {
			topics = c.topicsOfGroup(name)
		}
		stored[name] = !members && len(topics) > 0
		hidden[name] = !c.mayGroup(name, topics)
	}
	co.mu.Lock()
	for _, name := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group, dg.State = name, "Dead"
		if hidden[name] {
			dg.State, dg.ErrorCode = "", errGroupAuthorization
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		if stored[name] {
			dg.State, dg.ProtocolType = stateEmpty, "consumer"
		}
		if g := co.groups[name]; g != nil && len(g.members) > 0 {
			dg.State, dg.ProtocolType = g.state, g.protocolType
			if g.state == stateStable || g.state == stateCompleting {
				dg.Protocol = g.protocol
			}
			for _, m := range g.members {
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.host
				for _, p := range m.protocols {
					if p.name == g.protocol {
						dm.ProtocolMetadata = p.metadata
					}
				}
				dm.MemberAssignment = m.assignment
				dg.Members = append(dg.Members, dm)
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	co.mu.Unlock()
	c.finish(sl, h, resp)
}

// remoteHost names the client's address for DescribeGroups.
func (c *conn) remoteHost() string {
	if c.nc == nil {
		return ""
	}
	return "/" + c.nc.RemoteAddr().String()
}
