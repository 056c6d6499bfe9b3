package cluster

import (
	"fmt"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
)

// Idempotent producers in a cluster (DESIGN.md "Replication").
//
// Producer ids are the engine's: 63 random bits from crypto/rand, drawn by
// whichever node answers InitProducer. They need no coordination and no
// state, so a node whose disk was wiped cannot hand out an id again.
//
// Deduplication is decided where the batches are applied, not where they
// are proposed: each topic's apply goroutine keeps a table of every
// producer's recent sequences, fed only by the committed log in log order.
// Every replica applies the same log from its start, or from a snapshot
// that carries the table (snapshot_prods.go), so every replica makes the
// same decision for every batch: a
// retried batch whose first copy committed (a retry after a leader
// failover, or a proposal proposed again) is answered with its first
// copy's offset and stored by no replica; a gap is refused by all.

// producerWindow is how many recent batches per producer are remembered:
// as many as the engine remembers on a single node.
const producerWindow = 8

// maxTableProducers bounds the producers a topic remembers; the least
// recently seen one in log order is forgotten first (deterministic: the
// same on every replica).
const maxTableProducers = 4096

type seqAt struct {
	seq   uint32
	count uint32
	base  uint64
}

type prodState struct {
	ring [producerWindow]seqAt
	n    int
	head int
	seen uint64
}

func (p *prodState) last() seqAt { return p.ring[p.head] }

func (p *prodState) add(s seqAt) {
	if p.n > 0 {
		p.head = (p.head + 1) % producerWindow
	}
	p.ring[p.head] = s
	p.n = min(p.n+1, producerWindow)
}

func (p *prodState) find(seq uint32) (seqAt, bool) {
	for i := range p.n {
		s := p.ring[(p.head-i+producerWindow)%producerWindow]
		if s.seq == seq {
			return s, true
		}
	}
	return seqAt{}, false
}

// prodTable is a topic's producer table (its apply goroutine's only).
type prodTable struct {
	m    map[uint64]*prodState
	tick uint64
}

func newProdTable() *prodTable { return &prodTable{m: map[uint64]*prodState{}} }

// following returns the sequence after a batch of count messages with
// sequence seq (Kafka producers count messages: engine.RecordSequenced).
func following(pid uint64, seq, count uint32) uint32 {
	if pid&engine.RecordSequenced != 0 {
		return (seq + count) & 0x7fffffff
	}
	return seq + 1
}

// after reports whether sequence a comes after b, with wraparound.
func after(pid uint64, a, b uint32) bool {
	if pid&engine.RecordSequenced != 0 {
		return int32((a-b)<<1) > 0
	}
	return int32(a-b) > 0
}

// decide classifies the committed batch b that would be stored at base
// next: store (remembered at next), a duplicate (dup: its first copy's
// offset), or refused (err).
func (pt *prodTable) decide(b []byte, next uint64) (store bool, dup uint64, err error) {
	h, perr := record.ParseHeader(b)
	if perr != nil || h.ProducerID == 0 {
		return true, 0, nil
	}
	pid := h.ProducerID
	st := pt.m[pid]
	if st != nil {
		last := st.last()
		switch want := following(pid, last.seq, last.count); {
		case h.Sequence == want:
		case !after(pid, h.Sequence, last.seq):
			if s, ok := st.find(h.Sequence); ok && s.count == h.Count {
				pt.touch(st)
				return false, s.base, nil
			}
			return false, 0, fmt.Errorf("%w: producer %d sequence %d is older than the last %d remembered", engine.ErrSequence, pid, h.Sequence, producerWindow)
		default:
			return false, 0, fmt.Errorf("%w: producer %d sequence %d, expected %d (gap)", engine.ErrSequence, pid, h.Sequence, want)
		}
	}
	// A producer never seen (or forgotten) starts where it says.
	if st == nil {
		if len(pt.m) >= maxTableProducers {
			pt.evict()
		}
		st = &prodState{}
		pt.m[pid] = st
	}
	st.add(seqAt{seq: h.Sequence, count: h.Count, base: next})
	pt.touch(st)
	return true, 0, nil
}

func (pt *prodTable) touch(st *prodState) {
	pt.tick++
	st.seen = pt.tick
}

func (pt *prodTable) evict() {
	var oldest uint64
	when := ^uint64(0)
	for id, st := range pt.m {
		if st.seen < when {
			oldest, when = id, st.seen
		}
	}
	delete(pt.m, oldest)
}

// finishEach answers produce proposal id batch by batch: errs[i] non-nil
// refuses the i-th batch, else it is at bases[i].
func (n *Node) finishEach(id uint64, bases []uint64, errs []error) {
	n.wmu.Lock()
	p := n.waiters[id]
	delete(n.waiters, id)
	n.wmu.Unlock()
	if p == nil {
		return
	}
	for i, r := range p.reqs {
		if errs[i] != nil {
			r.err = errs[i]
		} else {
			r.base = bases[i]
		}
		close(r.done)
	}
	if p.done != nil {
		close(p.done)
	}
}

// NewProducerID returns a fresh random producer id (never 0), unique in
// the cluster with overwhelming probability (63 random bits).
func (n *Node) NewProducerID() uint64 { return n.e.NewProducerID() }

// IdempotentProducers reports true: batches with a producer id are
// deduplicated by every replica alike (see prodTable).
func (n *Node) IdempotentProducers() bool { return true }
