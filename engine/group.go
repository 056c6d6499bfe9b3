package engine

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/haraqa/haraqa/topicname"
)

// groupSet returns the topic's groups, creating their state log when
// create is set.
func (e *Engine) groupSet(topic string, create bool) (*groupSet, error) {
	t, err := e.topic(topic)
	if err != nil {
		return nil, err
	}
	e.gmu.RLock()
	gs := e.gsets[topic]
	e.gmu.RUnlock()
	if gs != nil && gs.t == t {
		return gs, nil
	}
	e.gmu.Lock()
	defer e.gmu.Unlock()
	if gs := e.gsets[topic]; gs != nil && gs.t == t {
		return gs, nil
	}
	if !create {
		return nil, fmt.Errorf("%w: topic %q has no groups", ErrGroupNotFound, topic)
	}
	if t.deleted.Load() {
		// Deleted since it was looked up: DeleteTopic removes the state
		// log under gmu after setting this, so none is created for it.
		return nil, fmt.Errorf("%w: %q", ErrTopicNotFound, topic)
	}
	name := groupLogName(topic)
	lt, err := e.anyTopic(name)
	if err != nil {
		if err := e.createNamed(name); err != nil {
			return nil, fmt.Errorf("engine: group state of topic %q: %w", topic, err)
		}
		if lt, err = e.anyTopic(name); err != nil {
			return nil, err
		}
	}
	gs = newGroupSet(e, t, lt)
	gs.serving = e.gserving[topic]
	if e.gsets == nil {
		e.gsets = map[string]*groupSet{}
	}
	e.gsets[topic] = gs
	return gs, nil
}

func checkGroupName(name string) error {
	if err := topicname.Check(name); err != nil {
		return fmt.Errorf("%w: group name: %v", ErrBadGroupRequest, err)
	}
	return nil
}

// normalize applies defaults and checks cfg.
func (e *Engine) normalizeGroupConfig(topic string, cfg GroupConfig) (GroupConfig, error) {
	if cfg.AckWait == 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.AckWait < MinAckWait || cfg.AckWait > MaxAckWait {
		return cfg, fmt.Errorf("%w: ack wait %v outside [%v, %v]", ErrBadGroupRequest, cfg.AckWait, MinAckWait, MaxAckWait)
	}
	if cfg.MaxDeliveries < 0 {
		return cfg, fmt.Errorf("%w: max deliveries %d", ErrBadGroupRequest, cfg.MaxDeliveries)
	}
	if cfg.DeadLetterTopic != "" {
		if err := ValidTopic(cfg.DeadLetterTopic); err != nil {
			return cfg, fmt.Errorf("%w: dead-letter topic: %v", ErrBadGroupRequest, err)
		}
		if cfg.DeadLetterTopic == topic {
			return cfg, fmt.Errorf("%w: dead-letter topic is the group's own topic", ErrBadGroupRequest)
		}
	}
	if cfg.Start.Kind > StartTime {
		return cfg, fmt.Errorf("%w: start kind %d", ErrBadGroupRequest, cfg.Start.Kind)
	}
	return cfg, nil
}

func sameGroupConfig(a, b GroupConfig) bool {
	return a.Exclusive == b.Exclusive && a.AckWait == b.AckWait && a.MaxDeliveries == b.MaxDeliveries && a.DeadLetterTopic == b.DeadLetterTopic
}

// startOffset resolves a start position on the topic.
func (e *Engine) startOffset(t *Topic, pos StartPosition) (uint64, error) {
	start, end := t.segments()[0].Base(), t.end.Load()
	switch pos.Kind {
	case StartEarliest:
		return start, nil
	case StartLatest:
		return end, nil
	case StartOffset:
		return min(max(pos.Offset, start), end), nil
	case StartTime:
		off, err := e.OffsetAt(t.name, pos.Time)
		return max(off, start), err
	}
	return 0, fmt.Errorf("%w: start kind %d", ErrBadGroupRequest, pos.Kind)
}

// CreateGroup creates a group on topic (see logsvc.Groups).
func (e *Engine) CreateGroup(ctx context.Context, topic, name string, cfg GroupConfig) (bool, error) {
	if err := checkGroupName(name); err != nil {
		return false, err
	}
	cfg, err := e.normalizeGroupConfig(topic, cfg)
	if err != nil {
		return false, err
	}
	gs, err := e.groupSet(topic, true)
	if err != nil {
		return false, err
	}
	gs.stateMu.RLock()
	defer gs.stateMu.RUnlock()
	gs.mu.Lock()
	if g := gs.groups[name]; g != nil && !g.ready && !g.deleted {
		// Another CreateGroup of it is being written: wait for its
		// outcome (ready, or removed) rather than answer for a group that
		// JoinGroup cannot find yet.
		gs.barrier()
	}
	if g := gs.groups[name]; g != nil {
		gs.mu.Unlock()
		if !g.deleted && sameGroupConfig(g.cfg, cfg) {
			return false, nil
		}
		return false, fmt.Errorf("%w: %q on topic %q", ErrGroupExists, name, topic)
	}
	n := 0
	for _, g := range gs.groups {
		if !g.deleted {
			n++
		}
	}
	if n >= e.opts.MaxGroups {
		gs.mu.Unlock()
		return false, fmt.Errorf("%w: topic %q has %d groups (limit %d)", ErrGroupLimit, topic, n, e.opts.MaxGroups)
	}
	off, err := e.startOffset(gs.t, cfg.Start)
	if err != nil {
		gs.mu.Unlock()
		return false, err
	}
	g := newGroup(name, cfg, off)
	tk, err := gs.enqueue(ctx, encodeState(nil, g))
	if err != nil {
		gs.mu.Unlock()
		return false, err
	}
	gs.groups[name] = g
	gs.mu.Unlock()
	err = gs.finish(tk, func(err error) {
		if err != nil {
			if gs.groups[name] == g {
				delete(gs.groups, name)
			}
			return
		}
		g.ready = true
	})
	return err == nil, err
}

// JoinGroup adds a member (see logsvc.Groups).
func (e *Engine) JoinGroup(ctx context.Context, topic, group, name string) (Member, error) {
	gs, err := e.groupSet(topic, false)
	if err != nil {
		return Member{}, err
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, err := gs.lookup(group)
	if err != nil {
		return Member{}, err
	}
	now := gs.now()
	gs.sweep(g, now)
	if len(g.members) >= e.opts.MaxGroupMembers {
		return Member{}, fmt.Errorf("%w: group %q has %d members (limit %d)", ErrGroupLimit, group, len(g.members), e.opts.MaxGroupMembers)
	}
	if len(name) > 256 {
		name = name[:256]
	}
	m := &groupMember{id: newMemberID(), name: name, lastSeen: now}
	for g.members[m.id] != nil {
		m.id = newMemberID()
	}
	g.members[m.id] = m
	return Member{ID: m.id, Epoch: g.epoch}, nil
}

// LeaveGroup removes a member (see logsvc.Groups).
func (e *Engine) LeaveGroup(ctx context.Context, topic, group string, mm Member) error {
	gs, err := e.groupSet(topic, false)
	if err != nil {
		return err
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, m, err := gs.member(group, mm.ID)
	if err != nil {
		return err
	}
	gs.dropMember(g, m)
	gs.arm()
	return nil
}

// GroupFetch leases messages to a member (see logsvc.Groups).
func (e *Engine) GroupFetch(ctx context.Context, topic, group string, mm Member, max int, wait time.Duration) (FetchResult, error) {
	if max <= 0 {
		return FetchResult{}, fmt.Errorf("%w: fetch of %d messages", ErrBadGroupRequest, max)
	}
	max = min(max, MaxGroupFetch)
	gs, err := e.groupSet(topic, false)
	if err != nil {
		return FetchResult{}, err
	}
	if err := gs.enter(group, mm.ID); err != nil {
		return FetchResult{}, err
	}
	defer gs.exit(group, mm.ID)
	until := time.Now().Add(wait)
	t := gs.t
	t.waiters.Add(1)
	defer t.waiters.Add(-1)
	for {
		tch := t.changed.Load()
		res, dl, wake, err := gs.fetchOnce(ctx, group, mm.ID, max)
		if err != nil || len(res.Leases) > 0 {
			if len(dl) > 0 {
				gs.deadLetter(ctx, dl)
			}
			return res, err
		}
		if len(dl) > 0 {
			gs.deadLetter(ctx, dl)
			continue
		}
		left := time.Until(until)
		if left <= 0 {
			return res, nil
		}
		if wake > 0 && wake < left {
			left = wake
		}
		gs.mu.Lock()
		ch := gs.changed
		gs.mu.Unlock()
		tm := time.NewTimer(left)
		select {
		case <-*tch:
		case <-ch:
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return res, ctx.Err()
		case <-e.stop:
			tm.Stop()
			return res, ErrClosed
		}
		tm.Stop()
		if t.deleted.Load() {
			return res, fmt.Errorf("%w: %q", ErrTopicNotFound, topic)
		}
	}
}

// fetchOnce leases what is deliverable now. With nothing, wake says when
// something may be (0: on a change only).
func (gs *groupSet) fetchOnce(ctx context.Context, group string, id uint64, max int) (res FetchResult, dl []*lease, wake time.Duration, err error) {
	for {
		gs.mu.Lock()
		if gs.closed {
			gs.mu.Unlock()
			if gs.t.deleted.Load() {
				return res, nil, 0, fmt.Errorf("%w: %q", ErrTopicNotFound, gs.t.name)
			}
			return res, nil, 0, ErrClosed
		}
		g, m, err := gs.member(group, id)
		if err != nil {
			gs.mu.Unlock()
			return res, nil, 0, err
		}
		now := gs.now()
		res.Epoch = g.epoch
		if start := gs.t.segments()[0].Base(); g.committed < start {
			gs.mu.Unlock()
			if err := gs.skipTo(ctx, group, start); err != nil {
				return res, nil, 0, err
			}
			continue
		}
		if g.cfg.Exclusive && g.holder != m {
			if h := g.holder; h != nil && gs.alive(g, h, now) {
				res.Standby = true
				wake = time.Duration(h.lastSeen + int64(g.cfg.AckWait) - now)
				if h.busy > 0 {
					wake = g.cfg.AckWait
				}
				gs.mu.Unlock()
				return res, nil, max64(wake, time.Millisecond), nil
			}
			gs.mu.Unlock()
			if err := gs.takeover(ctx, group, id); err != nil {
				return res, nil, 0, err
			}
			continue
		}
		limit := gs.e.opts.MaxGroupInFlight
		if m.inFlight >= uint64(limit) {
			gs.mu.Unlock()
			return res, nil, 0, fmt.Errorf("%w: member %d has %d messages in flight (limit %d)", ErrGroupLimit, id, m.inFlight, limit)
		}
		n := min(uint64(max), uint64(limit)-m.inFlight)
		leases, dl, next := gs.collect(g, m, n, now, gs.t.end.Load())
		for _, l := range leases {
			res.Leases = append(res.Leases, Lease{OffsetRange: l.OffsetRange, Deliveries: l.deliveries, Deadline: time.Unix(0, l.deadline)})
		}
		if len(leases) > 0 {
			gs.arm()
		}
		gs.mu.Unlock()
		if next > 0 {
			wake = time.Duration(next - now)
		}
		return res, dl, wake, nil
	}
}

func max64(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// collect leases up to n messages to m: redeliveries first, then new
// ones below end. Ranges past MaxDeliveries come back in dl, held for
// dead-lettering. next is the earliest pending redelivery's time (0: none).
func (gs *groupSet) collect(g *cgroup, m *groupMember, n uint64, now int64, end uint64) (out, dl []*lease, next int64) {
	deadline := now + int64(g.cfg.AckWait)
	for i := 0; n > 0 && i < len(g.pending); {
		p := g.pending[i]
		if p.notBefore > now {
			if next == 0 || p.notBefore < next {
				next = p.notBefore
			}
			if g.cfg.Exclusive {
				break // strict order: nothing above it goes out first
			}
			i++
			continue
		}
		if g.cfg.MaxDeliveries > 0 && int(p.deliveries) >= g.cfg.MaxDeliveries {
			g.pending = slices.Delete(g.pending, i, i+1)
			l := &lease{OffsetRange: p.OffsetRange, g: g, deliveries: p.deliveries, acking: true, hidx: -1}
			gs.insertLease(g, l)
			dl = append(dl, l)
			continue
		}
		take := min(p.Len(), n)
		r := OffsetRange{First: p.First, Next: p.First + take}
		if take < p.Len() {
			g.pending[i].First += take
		} else {
			g.pending = slices.Delete(g.pending, i, i+1)
		}
		l := &lease{OffsetRange: r, g: g, member: m, epoch: g.epoch, deliveries: p.deliveries + 1, deadline: deadline, hidx: -1}
		gs.insertLease(g, l)
		g.redeliv += take
		out = append(out, l)
		n -= take
	}
	if g.cfg.Exclusive && len(g.pending) > 0 {
		return out, dl, next
	}
	pos := max(g.delivered, g.committed)
	for n > 0 && pos < end {
		if a, ok := g.acked.containing(pos); ok {
			pos = a.Next
			continue
		}
		lim := end
		if j := g.acked.find(pos); j < len(g.acked) {
			lim = min(lim, g.acked[j].First)
		}
		take := min(lim-pos, n)
		l := &lease{OffsetRange: OffsetRange{First: pos, Next: pos + take}, g: g, member: m, epoch: g.epoch, deliveries: 1, deadline: deadline, hidx: -1}
		gs.insertLease(g, l)
		out = append(out, l)
		pos += take
		n -= take
	}
	g.delivered = max(g.delivered, pos)
	return out, dl, next
}

// takeover makes member id the holder of an exclusive group whose holder
// lapsed: the epoch is bumped durably first.
func (gs *groupSet) takeover(ctx context.Context, group string, id uint64) error {
	gs.stateMu.RLock()
	defer gs.stateMu.RUnlock()
	gs.mu.Lock()
	g, m, err := gs.member(group, id)
	if err != nil {
		gs.mu.Unlock()
		return err
	}
	if h := g.holder; h == m || (h != nil && gs.alive(g, h, gs.now())) {
		gs.mu.Unlock()
		return nil // someone else took it, or it is ours: look again
	}
	if h := g.holder; h != nil {
		gs.dropMember(g, h)
	}
	// The old holder's leases go back, in order.
	if len(g.leases) > 0 {
		for _, l := range slices.Clone(g.leases) {
			if !l.acking && l.member != nil {
				gs.release(l, 0)
				break // exclusive: releases everything above
			}
		}
	}
	epoch := g.epoch + 1
	g.epoch = epoch // acks queued from now on under the old epoch are refused
	tk, err := gs.enqueue(ctx, encodeEpoch(nil, group, epoch))
	if err != nil {
		gs.mu.Unlock()
		return err
	}
	g.holder = m // fetches wait for this record (mu, then finish) before leasing
	gs.mu.Unlock()
	return gs.finish(tk, func(err error) {
		if err != nil && g.holder == m {
			g.holder = nil
		}
		gs.wake()
	})
}

// skipTo moves a group that retention passed to the topic's start.
func (gs *groupSet) skipTo(ctx context.Context, group string, start uint64) error {
	gs.stateMu.RLock()
	defer gs.stateMu.RUnlock()
	gs.mu.Lock()
	g, err := gs.lookup(group)
	if err != nil || g.committed >= start {
		gs.mu.Unlock()
		return err
	}
	tk, err := gs.enqueue(ctx, encodeSkip(nil, group, start))
	gs.mu.Unlock()
	if err != nil {
		return err
	}
	return gs.finish(tk, func(err error) {
		if err == nil && !g.deleted {
			gs.applySkip(g, start)
			gs.wake()
		}
	})
}

// applySkip moves g to start, counting the messages not done below it.
func (gs *groupSet) applySkip(g *cgroup, start uint64) {
	if g.committed >= start {
		return
	}
	g.skipped += start - g.committed - g.acked.countBelow(start)
	gs.moveTo(g, start, true)
}

// ack validates ranges for m and marks the leases being acked; it returns
// the leases (under mu). sawAcking is set when offsets were being acked
// by an earlier call.
func (gs *groupSet) ackLeases(g *cgroup, m *groupMember, ranges []OffsetRange) (ls []*lease, sawAcking bool, err error) {
	for _, r := range ranges {
		if err := g.checkLeased(m, r, true); err != nil {
			return nil, false, fmt.Errorf("group %q member %d: %w", g.name, m.id, err)
		}
	}
	for _, r := range ranges {
		for _, l := range gs.leasesIn(g, m, r) {
			ls = append(ls, l)
		}
		i := sort.Search(len(g.leases), func(i int) bool { return g.leases[i].Next > r.First })
		for ; i < len(g.leases) && g.leases[i].First < r.Next; i++ {
			if g.leases[i].acking && g.leases[i].member == m {
				sawAcking = true
			}
		}
	}
	return ls, sawAcking, nil
}

// normRanges checks, sorts and merges ranges.
func normRanges(ranges []OffsetRange) ([]OffsetRange, error) {
	if len(ranges) > MaxGroupRanges {
		return nil, fmt.Errorf("%w: %d ranges in one call (limit %d)", ErrGroupLimit, len(ranges), MaxGroupRanges)
	}
	out := slices.Clone(ranges)
	for _, r := range out {
		if r.Next <= r.First {
			return nil, fmt.Errorf("%w: empty or inverted range [%d, %d)", ErrBadGroupRequest, r.First, r.Next)
		}
	}
	slices.SortFunc(out, func(a, b OffsetRange) int {
		switch {
		case a.First < b.First:
			return -1
		case a.First > b.First:
			return 1
		}
		return 0
	})
	var rs rangeSet
	for _, r := range out {
		rs = rs.add(r)
	}
	return rs, nil
}

// GroupAck acks ranges leased to a member, durably (see logsvc.Groups).
func (e *Engine) GroupAck(ctx context.Context, topic, group string, mm Member, ranges []OffsetRange) error {
	rs, err := normRanges(ranges)
	if err != nil {
		return err
	}
	return e.groupAck(ctx, topic, group, mm, func(gs *groupSet, g *cgroup, m *groupMember) ([]*lease, bool, error) {
		return gs.ackLeases(g, m, rs)
	})
}

// GroupAckUpTo acks every offset below next leased to a member.
func (e *Engine) GroupAckUpTo(ctx context.Context, topic, group string, mm Member, next uint64) error {
	return e.groupAck(ctx, topic, group, mm, func(gs *groupSet, g *cgroup, m *groupMember) ([]*lease, bool, error) {
		if next == 0 {
			return nil, false, nil
		}
		gs.splitAt(g, next)
		var ls []*lease
		for _, l := range g.leases {
			if l.First >= next {
				break
			}
			if l.member == m && !l.acking {
				ls = append(ls, l)
			}
		}
		return ls, false, nil
	})
}

func (e *Engine) groupAck(ctx context.Context, topic, group string, mm Member, pick func(*groupSet, *cgroup, *groupMember) ([]*lease, bool, error)) error {
	gs, err := e.groupSet(topic, false)
	if err != nil {
		return err
	}
	if err := gs.enter(group, mm.ID); err != nil {
		return err
	}
	defer gs.exit(group, mm.ID)
	gs.stateMu.RLock()
	defer gs.stateMu.RUnlock()
	gs.mu.Lock()
	g, m, err := gs.member(group, mm.ID)
	if err == nil {
		err = gs.checkEpoch(g, m, mm.Epoch)
	}
	var ls []*lease
	var sawAcking bool
	if err == nil {
		ls, sawAcking, err = pick(gs, g, m)
	}
	if err != nil {
		gs.mu.Unlock()
		return err
	}
	if len(ls) == 0 {
		if sawAcking {
			gs.barrier() // an earlier ack of these offsets: confirm only once it is applied
		}
		gs.mu.Unlock()
		return nil
	}
	if len(g.acked) >= e.opts.MaxAckedRanges && !g.joinsAcked(ls) {
		gs.mu.Unlock()
		return fmt.Errorf("%w: group %q holds %d acked ranges above its committed offset %d (limit %d)", ErrGroupLimit, group, len(g.acked), g.committed, e.opts.MaxAckedRanges)
	}
	var rs rangeSet
	for _, l := range ls {
		rs = rs.add(l.OffsetRange)
	}
	tk, err := gs.enqueue(ctx, encodeAck(nil, group, 0, rs))
	if err != nil {
		gs.mu.Unlock()
		return err
	}
	for _, l := range ls {
		l.acking = true
		if l.hidx >= 0 {
			gs.heapRemove(l)
		}
	}
	gs.mu.Unlock()
	return gs.finish(tk, func(err error) { gs.ackDone(g, ls, rs, err, false) })
}

// ackDone applies a written ack record (err nil) or undoes the marking.
func (gs *groupSet) ackDone(g *cgroup, ls []*lease, rs []OffsetRange, err error, dead bool) {
	if err != nil {
		now := gs.now()
		for _, l := range ls {
			if l.gone {
				continue
			}
			l.acking = false
			if l.member == nil {
				// Being dead-lettered: back for another try in a second.
				gs.releaseOne(l, now+int64(time.Second))
				continue
			}
			gs.pushLease(l)
		}
		gs.arm()
		gs.wake()
		return
	}
	for _, l := range ls {
		if !l.gone {
			gs.removeLease(l)
			l.gone = true
		}
	}
	if g.deleted {
		return
	}
	before := g.committed + g.acked.count()
	g.applyAck(rs)
	if dead {
		g.dead += g.committed + g.acked.count() - before
	}
}

// GroupNack releases leased offsets for redelivery after delay.
func (e *Engine) GroupNack(ctx context.Context, topic, group string, mm Member, ranges []OffsetRange, delay time.Duration) error {
	if delay < 0 || delay > MaxAckWait {
		return fmt.Errorf("%w: nack delay %v", ErrBadGroupRequest, delay)
	}
	return e.groupLeaseOp(topic, group, mm, ranges, func(gs *groupSet, ls []*lease, now int64) {
		nb := int64(0)
		if delay > 0 {
			nb = now + int64(delay)
		}
		for _, l := range ls {
			gs.release(l, nb)
		}
		gs.wake()
	})
}

// GroupReturn gives leased offsets back for delivery to any member at once,
// without counting the lease as a delivery: for a front end that leased
// messages it then could not send (past its frame limit, say), so that no
// member ever received them. Their delivery count is what it was before
// the fetch, so MaxDeliveries never dead-letters a message no member got.
func (e *Engine) GroupReturn(ctx context.Context, topic, group string, mm Member, ranges []OffsetRange) error {
	return e.groupLeaseOp(topic, group, mm, ranges, func(gs *groupSet, ls []*lease, now int64) {
		for _, l := range ls {
			if l.deliveries > 0 {
				l.deliveries--
			}
		}
		for _, l := range ls {
			gs.release(l, 0) // exclusive: with every lease above it, in order
		}
		gs.wake()
	})
}

// GroupExtend restarts the ack-wait of leased offsets.
func (e *Engine) GroupExtend(ctx context.Context, topic, group string, mm Member, ranges []OffsetRange) error {
	return e.groupLeaseOp(topic, group, mm, ranges, func(gs *groupSet, ls []*lease, now int64) {
		for _, l := range ls {
			l.deadline = now + int64(l.g.cfg.AckWait)
			if l.hidx >= 0 {
				gs.heapFix(l)
			}
		}
	})
}

// groupLeaseOp runs op on the member's leases in ranges (nil: all of its
// leases), after checking every offset is leased to it.
func (e *Engine) groupLeaseOp(topic, group string, mm Member, ranges []OffsetRange, op func(*groupSet, []*lease, int64)) error {
	var rs []OffsetRange
	if ranges != nil {
		var err error
		if rs, err = normRanges(ranges); err != nil {
			return err
		}
	}
	gs, err := e.groupSet(topic, false)
	if err != nil {
		return err
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, m, err := gs.member(group, mm.ID)
	if err == nil {
		err = gs.checkEpoch(g, m, mm.Epoch)
	}
	if err != nil {
		return err
	}
	now := gs.now()
	m.lastSeen = now
	var ls []*lease
	if rs == nil {
		for _, l := range g.leases {
			if l.member == m && !l.acking {
				ls = append(ls, l)
			}
		}
	} else {
		for _, r := range rs {
			if err := g.checkLeased(m, r, false); err != nil {
				return fmt.Errorf("group %q member %d: %w", group, m.id, err)
			}
		}
		for _, r := range rs {
			ls = append(ls, gs.leasesIn(g, m, r)...)
		}
	}
	op(gs, ls, now)
	gs.timerAt = 0
	gs.arm()
	return nil
}
