package engine

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/record"
)

// groupLogPrefix starts the name of a topic's group-state log, an internal
// topic: "~" is no topic-name character, so no client can name it.
const groupLogPrefix = "~g."

func groupLogName(topic string) string { return groupLogPrefix + topic }

// isInternal reports whether name is an internal topic's.
func isInternal(name string) bool { return strings.HasPrefix(name, "~") }

// validInternal checks an internal topic's name.
func validInternal(name string) bool {
	base, ok := strings.CutPrefix(name, groupLogPrefix)
	return ok && ValidTopic(base) == nil
}

// groupSet holds the groups of one topic and their state log.
//
// Concurrency: mu guards every field and every group's state. A durable
// change holds stateMu shared from before it queues its record until it
// applied it; compaction holds it exclusively. Records are queued under
// mu (so the log's order is mu's order) and applied in that same order
// (seq), after their append returned.
type groupSet struct {
	e   *Engine
	t   *Topic // the topic
	log *Topic // its group-state log

	stateMu sync.RWMutex
	mu      sync.Mutex
	cond    sync.Cond
	groups  map[string]*cgroup
	heap    leaseHeap
	timer   *time.Timer
	timerAt int64
	changed chan struct{} // closed and replaced when something may have become deliverable
	nextSeq uint64        // records queued
	applied uint64        // records applied
	closed  bool
	// Replicated groups (Options.GroupRecords, group_replica.go):
	// logIndex is the last replicated entry in the state log; serving
	// is set on the replica that coordinates the groups (else records
	// are applied as they are appended).
	logIndex uint64
	serving  bool

	since      atomic.Int64 // bytes appended since the last snapshot
	snapBytes  int64
	compacting atomic.Bool
	compactWG  sync.WaitGroup // a compaction under way; close waits for it
}

func newGroupSet(e *Engine, t, log *Topic) *groupSet {
	gs := &groupSet{e: e, t: t, log: log, groups: map[string]*cgroup{}, changed: make(chan struct{})}
	gs.cond.L = &gs.mu
	return gs
}

func (gs *groupSet) now() int64 { return gs.e.opts.Now().UnixNano() }

// wake tells waiting fetches to look again.
func (gs *groupSet) wake() {
	close(gs.changed)
	gs.changed = make(chan struct{})
}

// arm sets the timer to the earliest lease deadline.
func (gs *groupSet) arm() {
	if gs.closed || len(gs.heap) == 0 {
		return
	}
	at := gs.heap[0].deadline
	if gs.timer != nil && at == gs.timerAt {
		return
	}
	gs.timerAt = at
	d := time.Duration(at - gs.now())
	if gs.timer == nil {
		gs.timer = time.AfterFunc(d, gs.expire)
		return
	}
	gs.timer.Reset(d)
}

// expire releases the leases whose deadline passed (the timer's function:
// one timer per topic, no goroutine per lease).
func (gs *groupSet) expire() {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	now := gs.now()
	n := 0
	for len(gs.heap) > 0 && gs.heap[0].deadline <= now {
		l := heap.Pop(&gs.heap).(*lease)
		l.g.expired++
		gs.release(l, 0)
		n++
	}
	gs.timerAt = 0
	if n > 0 {
		gs.wake()
	}
	gs.arm()
}

// close stops the group set (engine close, topic delete): no record is
// queued from now on; a compaction under way finishes first.
func (gs *groupSet) close() {
	gs.mu.Lock()
	gs.closed = true
	if gs.timer != nil {
		gs.timer.Stop()
	}
	gs.wake()
	gs.mu.Unlock()
	gs.compactWG.Wait()
}

// ticket is a queued state record.
type ticket struct {
	seq uint64
	p   Pending
	n   int
}

// enqueue queues one batch of records on the state log. Callers hold
// stateMu (shared) and mu, and must call finish with the ticket.
func (gs *groupSet) enqueue(ctx context.Context, msgs ...[]byte) (ticket, error) {
	if gs.closed {
		return ticket{}, ErrClosed
	}
	batch, err := record.AppendBatch(nil, msgs...)
	if err != nil {
		return ticket{}, fmt.Errorf("%w: %v", ErrBadGroupRequest, err)
	}
	if len(batch) > gs.e.opts.MaxBatchBytes {
		return ticket{}, fmt.Errorf("%w: group-state record of %d bytes", ErrGroupLimit, len(batch))
	}
	var p Pending
	if f := gs.e.opts.GroupRecords; f != nil {
		p, err = f(ctx, gs.t.name, batch) // queued for replication
	} else {
		p, err = gs.e.enqueueTopic(ctx, gs.log, batch, false) // queued: never a write under mu
	}
	if err != nil {
		return ticket{}, fmt.Errorf("engine: group state of topic %q: %w", gs.t.name, err)
	}
	gs.nextSeq++
	return ticket{seq: gs.nextSeq, p: p, n: len(batch)}, nil
}

// finish waits for the record's append and applies it (apply gets the
// append's error) in the order the records were queued. It takes mu.
func (gs *groupSet) finish(tk ticket, apply func(err error)) error {
	_, err := tk.p.Wait()
	if err != nil {
		err = fmt.Errorf("engine: group state of topic %q: %w", gs.t.name, err)
	}
	gs.mu.Lock()
	for gs.applied+1 != tk.seq {
		gs.cond.Wait()
	}
	apply(err)
	gs.applied = tk.seq
	gs.cond.Broadcast()
	gs.mu.Unlock()
	if err == nil {
		gs.since.Add(int64(tk.n))
		gs.maybeCompact()
	}
	return err
}

// barrier waits (under mu) until every record queued so far was applied.
func (gs *groupSet) barrier() {
	want := gs.nextSeq
	for gs.applied < want {
		gs.cond.Wait()
	}
}

// lookup returns a ready group (under mu).
func (gs *groupSet) lookup(name string) (*cgroup, error) {
	g := gs.groups[name]
	if g == nil || !g.ready || g.deleted {
		return nil, fmt.Errorf("%w: %q on topic %q", ErrGroupNotFound, name, gs.t.name)
	}
	return g, nil
}

func (gs *groupSet) alive(g *cgroup, m *groupMember, now int64) bool {
	return !m.left && (m.busy > 0 || now-m.lastSeen < int64(g.cfg.AckWait))
}

// dropMember removes a member; its leases go back for redelivery.
func (gs *groupSet) dropMember(g *cgroup, m *groupMember) {
	m.left = true
	delete(g.members, m.id)
	var mine []*lease
	for _, l := range g.leases {
		if l.member == m && !l.acking {
			mine = append(mine, l)
		}
	}
	for _, l := range mine {
		gs.release(l, 0)
	}
	if g.holder == m {
		g.holder = nil
	}
	gs.wake()
}

// sweep drops the members silent for longer than AckWait.
func (gs *groupSet) sweep(g *cgroup, now int64) {
	for _, m := range g.members {
		if !gs.alive(g, m, now) {
			gs.dropMember(g, m)
		}
	}
}

// member returns the group and the live member id (under mu).
func (gs *groupSet) member(group string, id uint64) (*cgroup, *groupMember, error) {
	g, err := gs.lookup(group)
	if err != nil {
		return nil, nil, err
	}
	m := g.members[id]
	if m == nil {
		return g, nil, fmt.Errorf("%w: member %d of group %q is unknown (never joined, left or expired)", ErrStaleMember, id, group)
	}
	if !gs.alive(g, m, gs.now()) {
		gs.dropMember(g, m)
		return g, nil, fmt.Errorf("%w: member %d of group %q expired (no call for %v)", ErrStaleMember, id, group, g.cfg.AckWait)
	}
	return g, m, nil
}

// checkEpoch refuses a member acting under an old epoch or a standby.
func (gs *groupSet) checkEpoch(g *cgroup, m *groupMember, epoch uint64) error {
	if epoch != g.epoch {
		return fmt.Errorf("%w: member %d epoch %d, group %q is at epoch %d", ErrStaleMember, m.id, epoch, g.name, g.epoch)
	}
	if g.cfg.Exclusive && g.holder != m {
		return fmt.Errorf("%w: member %d does not hold exclusive group %q", ErrStaleMember, m.id, g.name)
	}
	return nil
}

// enter marks a call of the member under way (alive) and returns it.
func (gs *groupSet) enter(group string, id uint64) error {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	_, m, err := gs.member(group, id)
	if err == nil {
		m.busy++
	}
	return err
}

// exit ends a call of the member.
func (gs *groupSet) exit(group string, id uint64) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if g := gs.groups[group]; g != nil {
		if m := g.members[id]; m != nil {
			m.busy--
			m.lastSeen = gs.now()
		}
	}
}

func newMemberID() uint64 {
	for {
		if id := rand.Uint64(); id != 0 {
			return id
		}
	}
}

// insertLease adds l to g's sorted leases and, unless it is being acked,
// to the heap.
func (gs *groupSet) insertLease(g *cgroup, l *lease) {
	n := len(g.leases)
	if n == 0 || g.leases[n-1].First < l.First {
		g.leases = append(g.leases, l)
	} else {
		i := sort.Search(n, func(i int) bool { return g.leases[i].First >= l.First })
		g.leases = append(g.leases, nil)
		copy(g.leases[i+1:], g.leases[i:])
		g.leases[i] = l
	}
	if l.member != nil {
		l.member.inFlight += l.Len()
	}
	g.inFlight += l.Len()
	if !l.acking {
		heap.Push(&gs.heap, l)
	}
}

func (gs *groupSet) heapRemove(l *lease) { heap.Remove(&gs.heap, l.hidx) }
func (gs *groupSet) heapFix(l *lease)    { heap.Fix(&gs.heap, l.hidx) }

// pushLease puts a lease back on the heap.
func (gs *groupSet) pushLease(l *lease) {
	if l.hidx < 0 {
		heap.Push(&gs.heap, l)
	}
}
