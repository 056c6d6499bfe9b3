package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/haraqa/haraqa/engine"
	"go.etcd.io/raft/v3"
)

// Linearizable reads: Raft's ReadIndex.
//
// A replica's engine holds only committed batches, but not necessarily
// every batch the cluster acknowledged: a follower applies a commit a
// moment after its leader acknowledged it, a new leader before it applied
// its predecessor's last commits. A read that must see every acknowledged
// message (a topic's end for Offsets, a read past this replica's end)
// first asks the group for a read index: the leader's commit index once a
// quorum confirmed by a heartbeat round that it still leads (a follower's
// request goes to the leader as MsgReadIndex and comes back as a
// ReadState; a leader that has not committed an entry of its term yet
// answers once it has). Every produce acknowledged before the request was
// committed at or below that index, so once this replica has applied up
// to it, its engine holds them all.
//
// The loop batches the requests of a round into one ReadIndex per group
// (a unique context: node id, incarnation, sequence), wakes a quiet group
// (a quiet leader sends no heartbeats: it must tick to confirm), asks
// again every two heartbeat intervals while unanswered (a follower's
// request is dropped while it knows no leader, a message may be lost),
// and gives up after the caller's bound.

// readWait is one reader waiting for a read index.
type readWait struct {
	gid   uint64
	g     *group // set by the loop
	index uint64
	err   error
	done  chan struct{}
}

// readRound is one ReadIndex request in flight (loop-owned).
type readRound struct {
	g      *group
	waits  []*readWait
	ctx    []byte
	asked  int // tick of the last ReadIndex call
	expiry int // tick after which it is given up
}

// readIndexes is the node's ReadIndex state.
type readIndexes struct {
	mu sync.Mutex
	q  []*readWait // queued by readers, taken by the loop

	// Loop-owned.
	seq    uint64
	rounds map[string]*readRound

	// gate, set by tests only: while it holds a channel, this node's
	// topic applies wait for it to close.
	gate atomic.Pointer[chan struct{}]
}

// gateApply waits while a test holds this node's applies (apply goroutine).
func (n *Node) gateApply(g *group) {
	if ch := n.rix.gate.Load(); ch != nil {
		select {
		case <-*ch:
		case <-g.astop:
		}
	}
}

// applyWatch lets readers wait for a group's apply to advance.
type applyWatch struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next notify. Take it before
// checking the applied index, so that no advance is missed.
func (w *applyWatch) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// notify wakes every waiter (the apply goroutine, after storing applied).
func (w *applyWatch) notify() {
	w.mu.Lock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
	w.mu.Unlock()
}

// readBarrier returns once this replica has applied every entry the
// topic's group had committed when it was called (so every produce the
// cluster acknowledged before), or a retriable error when ctx ends first
// (no quorum confirmed a leader in time, or this replica's apply is
// behind).
func (n *Node) readBarrier(ctx context.Context, ti *TopicInfo) error {
	w := &readWait{gid: ti.Group, done: make(chan struct{})}
	n.mu.Lock()
	stopped, failed := n.stopped, n.failed
	n.mu.Unlock()
	if stopped {
		return engine.ErrClosed
	}
	if failed != nil {
		return unavailable("cluster: node failed: %v", failed)
	}
	n.rix.mu.Lock()
	n.rix.q = append(n.rix.q, w)
	n.rix.mu.Unlock()
	n.wake()
	select {
	case <-w.done:
	case <-ctx.Done():
		return n.notLeader(n.leaderOf(ti.Name), "cluster: topic %q: no leader confirmed by a quorum within %v (its end is unknown here); retry", ti.Name, n.behindWait())
	case <-n.done:
		return engine.ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	for {
		ch := w.g.aw.wait()
		if w.g.applied.Load() >= w.index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return n.notLeader(n.leaderOf(ti.Name), "cluster: topic %q: this replica has not applied up to the group's commit (index %d, applied %d) within %v; retry, or ask the leader",
				ti.Name, w.index, w.g.applied.Load(), n.behindWait())
		case <-n.done:
			return engine.ErrClosed
		}
	}
}

// startReads turns the readers queued since the last round into one
// ReadIndex request per group (loop).
func (n *Node) startReads() {
	n.rix.mu.Lock()
	q := n.rix.q
	n.rix.q = nil
	n.rix.mu.Unlock()
	if len(q) == 0 {
		return
	}
	if n.rix.rounds == nil {
		n.rix.rounds = map[string]*readRound{}
	}
	byGroup := map[uint64]*readRound{}
	for _, w := range q {
		g := n.groups[w.gid]
		if g == nil {
			w.err = fmt.Errorf("%w: topic's group %d is not on this node", engine.ErrTopicNotFound, w.gid)
			close(w.done)
			continue
		}
		w.g = g
		r := byGroup[w.gid]
		if r == nil {
			n.rix.seq++
			ctx := binary.LittleEndian.AppendUint64(nil, n.cfg.NodeID)
			ctx = binary.LittleEndian.AppendUint64(ctx, n.q.self)
			ctx = binary.LittleEndian.AppendUint64(ctx, n.rix.seq)
			r = &readRound{g: g, ctx: ctx, expiry: n.q.ticks + n.readTicks()}
			byGroup[w.gid] = r
			n.rix.rounds[string(ctx)] = r
		}
		r.waits = append(r.waits, w)
	}
	for _, r := range byGroup {
		n.askRead(r)
	}
}

// askRead (re)sends a round's ReadIndex request, waking its group.
func (n *Node) askRead(r *readRound) {
	g := r.g
	if g.quiet {
		n.wakeGroup(g)
	}
	r.asked = n.q.ticks
	g.rn.ReadIndex(r.ctx)
	n.touched[g.id] = g
}

// retryReads asks again for the rounds not answered for two heartbeat
// intervals and drops those past their bound (loop, every tick).
func (n *Node) retryReads() {
	for k, r := range n.rix.rounds {
		var err error
		switch {
		case n.groups[r.g.id] != r.g:
			err = fmt.Errorf("%w: topic's group %d is gone", engine.ErrTopicNotFound, r.g.id)
		case n.q.ticks > r.expiry:
			err = n.notLeader(r.g.lead, "cluster: topic %q: no read index within %v; retry", r.g.topic, n.behindWait())
		case n.q.ticks-r.asked >= 2*n.cfg.HeartbeatTicks:
			n.askRead(r)
			continue
		default:
			continue
		}
		delete(n.rix.rounds, k)
		for _, w := range r.waits {
			w.err = err
			close(w.done)
		}
	}
}

// readStates answers the rounds a Ready confirmed (loop).
func (n *Node) readStates(rs []raft.ReadState) {
	for _, s := range rs {
		r := n.rix.rounds[string(s.RequestCtx)]
		if r == nil {
			continue // answered already (asked twice), or given up
		}
		delete(n.rix.rounds, string(s.RequestCtx))
		for _, w := range r.waits {
			w.index = s.Index
			close(w.done)
		}
	}
}

// readTicks is the bound of a read index round in ticks: the readers'
// bound (behindWait) and one tick more.
func (n *Node) readTicks() int {
	return int(n.behindWait()/n.cfg.TickInterval) + 1
}

// leaderOf is the topic's leader as this node last saw it (0: none).
func (n *Node) leaderOf(topic string) uint64 {
	n.tmu.RLock()
	defer n.tmu.RUnlock()
	return n.leads[topic]
}
