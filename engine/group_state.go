package engine

import (
	"container/heap"
	"fmt"
	"sort"
)

// This file holds a group's in-memory state and the pure operations on it
// (DESIGN.md, "Consumer groups"). Every function here runs under the
// topic's groupSet.mu.

// rangeSet is a sorted set of disjoint, non-adjacent offset ranges.
type rangeSet []OffsetRange

// find returns the index of the first range whose Next is above off.
func (s rangeSet) find(off uint64) int {
	return sort.Search(len(s), func(i int) bool { return s[i].Next > off })
}

// containing returns the range holding off, if any.
func (s rangeSet) containing(off uint64) (OffsetRange, bool) {
	i := s.find(off)
	if i < len(s) && s[i].First <= off {
		return s[i], true
	}
	return OffsetRange{}, false
}

// add merges r into the set.
func (s rangeSet) add(r OffsetRange) rangeSet {
	if r.Next <= r.First {
		return s
	}
	// Ranges touching or overlapping r: [i, j).
	i := sort.Search(len(s), func(i int) bool { return s[i].Next >= r.First })
	j := i
	for j < len(s) && s[j].First <= r.Next {
		r.First = min(r.First, s[j].First)
		r.Next = max(r.Next, s[j].Next)
		j++
	}
	if i == j {
		s = append(s, OffsetRange{})
		copy(s[i+1:], s[i:])
		s[i] = r
		return s
	}
	s[i] = r
	return append(s[:i+1], s[j:]...)
}

// trimBelow removes every offset below off.
func (s rangeSet) trimBelow(off uint64) rangeSet {
	i := s.find(off)
	s = append(s[:0], s[i:]...)
	if len(s) > 0 && s[0].First < off {
		s[0].First = off
	}
	return s
}

// trimAbove removes every offset at or above off.
func (s rangeSet) trimAbove(off uint64) rangeSet {
	i := s.find(off)
	if i < len(s) && s[i].First < off {
		s[i].Next = off
		i++
	}
	return s[:i]
}

// count returns the number of offsets in the set.
func (s rangeSet) count() uint64 {
	var n uint64
	for _, r := range s {
		n += r.Len()
	}
	return n
}

// countBelow returns the number of offsets in the set below off.
func (s rangeSet) countBelow(off uint64) uint64 {
	var n uint64
	for _, r := range s {
		if r.First >= off {
			break
		}
		n += min(r.Next, off) - r.First
	}
	return n
}

// lease is a range leased to one member (member nil: being dead-lettered).
type lease struct {
	OffsetRange
	g          *cgroup
	member     *groupMember
	epoch      uint64
	deliveries uint32
	deadline   int64 // Unix nanoseconds
	acking     bool  // an ack of it is being written: it does not expire
	gone       bool  // dropped (seek, skip, delete): an ack in flight applies nothing to it
	hidx       int   // index in the groupSet's heap, -1 when not in it
}

// pendingRange waits for redelivery: deliverable from notBefore on.
type pendingRange struct {
	OffsetRange
	deliveries uint32
	notBefore  int64
}

type groupMember struct {
	id       uint64
	name     string
	inFlight uint64
	lastSeen int64 // Unix nanoseconds of the end of its last call
	busy     int   // calls of it under way (a member in a call is alive)
	left     bool
}

// group is one consumer group. The fields marked durable are what the
// group-state log replays; the rest lives in memory only.
type cgroup struct {
	name string
	cfg  GroupConfig // durable
	// committed: every offset below is done. acked: offsets done above it
	// (never holding committed itself). Durable.
	committed uint64
	acked     rangeSet
	epoch     uint64 // durable (may run ahead of the log while a change is written)
	dead      uint64 // dead-lettered, durable
	skipped   uint64 // durable

	ready     bool   // its creation is durable
	deleted   bool   // a delete was queued
	delivered uint64 // every offset below was delivered at least once (or is done)
	leases    []*lease
	pending   []pendingRange // sorted by First
	members   map[uint64]*groupMember
	holder    *groupMember // exclusive: the member holding the group
	redeliv   uint64
	expired   uint64
	inFlight  uint64
}

func newGroup(name string, cfg GroupConfig, committed uint64) *cgroup {
	return &cgroup{name: name, cfg: cfg, committed: committed, delivered: committed, members: map[uint64]*groupMember{}}
}

// done reports whether off is done (committed or acked).
func (g *cgroup) done(off uint64) bool {
	if off < g.committed {
		return true
	}
	_, ok := g.acked.containing(off)
	return ok
}

// leaseAt returns the index of the lease holding off, or -1.
func (g *cgroup) leaseAt(off uint64) int {
	i := sort.Search(len(g.leases), func(i int) bool { return g.leases[i].Next > off })
	if i < len(g.leases) && g.leases[i].First <= off {
		return i
	}
	return -1
}

// advance moves committed over the acked ranges that join it.
func (g *cgroup) advance() {
	for len(g.acked) > 0 && g.acked[0].First <= g.committed {
		g.committed = max(g.committed, g.acked[0].Next)
		g.acked = g.acked[1:]
	}
	if cap(g.acked) > 64 && len(g.acked) < cap(g.acked)/4 {
		g.acked = append(rangeSet(nil), g.acked...)
	}
	g.delivered = max(g.delivered, g.committed)
}

// applyAck records ranges as done (a replayed or confirmed ack record).
func (g *cgroup) applyAck(ranges []OffsetRange) {
	for _, r := range ranges {
		if r.Next <= g.committed {
			continue
		}
		r.First = max(r.First, g.committed)
		g.acked = g.acked.add(r)
	}
	g.advance()
}

// joinsAcked reports whether every lease of ls starts at or below the
// committed offset or touches an acked range, so that acking them adds no
// range to the acked set.
func (g *cgroup) joinsAcked(ls []*lease) bool {
	for _, l := range ls {
		if l.First <= g.committed {
			continue
		}
		if _, ok := g.acked.containing(l.First - 1); ok {
			continue
		}
		if _, ok := g.acked.containing(l.Next); ok {
			continue
		}
		return false
	}
	return true
}

// checkLeased checks that every offset of r is leased to m (under the
// group's epoch, not expired) or already done (when doneOK).
func (g *cgroup) checkLeased(m *groupMember, r OffsetRange, doneOK bool) error {
	for pos := r.First; pos < r.Next; {
		if pos < g.committed {
			if !doneOK {
				return fmt.Errorf("%w: offset %d is already done (committed %d)", ErrNotLeased, pos, g.committed)
			}
			pos = min(g.committed, r.Next)
			continue
		}
		if a, ok := g.acked.containing(pos); ok {
			if !doneOK {
				return fmt.Errorf("%w: offset %d is already acked", ErrNotLeased, pos)
			}
			pos = a.Next
			continue
		}
		i := g.leaseAt(pos)
		if i < 0 {
			if pos >= g.delivered {
				return fmt.Errorf("%w: offset %d was never delivered (delivered below %d)", ErrNotLeased, pos, g.delivered)
			}
			return fmt.Errorf("%w: offset %d is not leased (its lease expired or it was released)", ErrNotLeased, pos)
		}
		l := g.leases[i]
		if l.member != m {
			return fmt.Errorf("%w: offset %d is leased to another member", ErrNotLeased, pos)
		}
		if l.acking && !doneOK {
			return fmt.Errorf("%w: offset %d is being acked", ErrNotLeased, pos)
		}
		pos = l.Next
	}
	return nil
}

// splitAt makes off a lease boundary (a lease holding off on both sides is
// cut in two).
func (gs *groupSet) splitAt(g *cgroup, off uint64) {
	i := g.leaseAt(off)
	if i < 0 || g.leases[i].First == off {
		return
	}
	l := g.leases[i]
	n := &lease{OffsetRange: OffsetRange{First: off, Next: l.Next}, g: g, member: l.member, epoch: l.epoch,
		deliveries: l.deliveries, deadline: l.deadline, acking: l.acking, hidx: -1}
	l.Next = off
	g.leases = append(g.leases, nil)
	copy(g.leases[i+2:], g.leases[i+1:])
	g.leases[i+1] = n
	if !n.acking && n.member != nil {
		heap.Push(&gs.heap, n)
	}
}

// leasesIn returns m's leases inside r (after splitting at its bounds).
// With m nil: every lease inside r.
func (gs *groupSet) leasesIn(g *cgroup, m *groupMember, r OffsetRange) []*lease {
	gs.splitAt(g, r.First)
	gs.splitAt(g, r.Next)
	i := sort.Search(len(g.leases), func(i int) bool { return g.leases[i].Next > r.First })
	var out []*lease
	for ; i < len(g.leases) && g.leases[i].First < r.Next; i++ {
		if l := g.leases[i]; (m == nil || l.member == m) && !l.acking {
			out = append(out, l)
		}
	}
	return out
}

// removeLease takes l out of the group's leases and the heap.
func (gs *groupSet) removeLease(l *lease) {
	g := l.g
	if l.hidx >= 0 {
		heap.Remove(&gs.heap, l.hidx)
	}
	i := sort.Search(len(g.leases), func(i int) bool { return g.leases[i].First >= l.First })
	if i < len(g.leases) && g.leases[i] == l {
		g.leases = append(g.leases[:i], g.leases[i+1:]...)
	}
	if l.member != nil {
		l.member.inFlight -= l.Len()
	}
	g.inFlight -= l.Len()
}

// release puts l's offsets back for redelivery from notBefore on. In an
// exclusive group every lease above it goes back with it, so that the
// next delivery starts again at the lowest offset not done.
func (gs *groupSet) release(l *lease, notBefore int64) {
	g := l.g
	if g.cfg.Exclusive {
		var above []*lease
		for _, x := range g.leases {
			if x.First >= l.First && !x.acking {
				above = append(above, x)
			}
		}
		for _, x := range above {
			gs.releaseOne(x, notBefore)
		}
		return
	}
	gs.releaseOne(l, notBefore)
}

func (gs *groupSet) releaseOne(l *lease, notBefore int64) {
	if l.gone {
		return
	}
	gs.removeLease(l)
	l.gone = true
	g := l.g
	p := pendingRange{OffsetRange: l.OffsetRange, deliveries: l.deliveries, notBefore: notBefore}
	i := sort.Search(len(g.pending), func(i int) bool { return g.pending[i].First >= p.First })
	g.pending = append(g.pending, pendingRange{})
	copy(g.pending[i+1:], g.pending[i:])
	g.pending[i] = p
}

// dropAll forgets every lease and pending redelivery (seek, skip, delete,
// takeover: the latter puts them back as pending first).
func (gs *groupSet) dropAll(g *cgroup) {
	for _, l := range g.leases {
		if l.hidx >= 0 {
			heap.Remove(&gs.heap, l.hidx)
		}
		if l.member != nil {
			l.member.inFlight -= l.Len()
		}
		l.gone = true
	}
	g.leases, g.pending, g.inFlight = nil, nil, 0
}

// moveTo sets committed to off (a seek or a skip): acks below it are
// forgotten (seek: every ack), leases and redeliveries dropped.
func (gs *groupSet) moveTo(g *cgroup, off uint64, keepAbove bool) {
	gs.dropAll(g)
	if keepAbove && off >= g.committed {
		g.acked = g.acked.trimBelow(off)
	} else {
		g.acked = nil
	}
	g.committed = off
	g.delivered = off
	g.advance()
}

// leaseHeap orders leases by deadline.
type leaseHeap []*lease

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *leaseHeap) Push(x any) {
	l := x.(*lease)
	l.hidx = len(*h)
	*h = append(*h, l)
}
func (h *leaseHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	l.hidx = -1
	return l
}
