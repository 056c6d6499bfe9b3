package engine

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/haraqa/haraqa/record"
)

// Idempotent producers. A batch whose header carries a nonzero producer id
// is deduplicated per topic: the topic's writer remembers, per producer,
// the last few sequence numbers it appended with their offsets. A retried
// batch (same producer id and sequence) is answered with its original
// offset instead of being appended again; a sequence that skips ahead is
// refused. The state lives only in the writer goroutine (no locks); it is
// checkpointed to a small file (producerfile.go) and rebuilt from it, and
// from the log tail after it, when a topic opens.

const (
	// seqWindow is how many recent batches per producer are remembered.
	seqWindow = 8
	// maxProducers bounds the producers remembered per topic; the least
	// recently seen is forgotten first.
	maxProducers = 4096
	// recoverBatches bounds the log tail read at open to rebuild the state.
	recoverBatches = 16384
)

// ErrSequence reports a producer sequence that cannot be appended: a gap
// after the last one, or one older than the remembered window.
var ErrSequence = fmt.Errorf("%w: producer sequence out of order", ErrInvalidBatch)

type seqEntry struct {
	seq   uint32
	base  uint64
	count uint32
}

type producerState struct {
	ring [seqWindow]seqEntry
	n    int    // entries used in ring
	head int    // index of the newest entry
	seen uint64 // writer tick of the last use, for eviction
}

func (p *producerState) last() seqEntry { return p.ring[p.head] }

func (p *producerState) add(e seqEntry) {
	if p.n > 0 {
		p.head = (p.head + 1) % seqWindow
	}
	p.ring[p.head] = e
	p.n = min(p.n+1, seqWindow)
}

func (p *producerState) find(seq uint32) (seqEntry, bool) {
	for i := 0; i < p.n; i++ {
		e := p.ring[(p.head-i+seqWindow)%seqWindow]
		if e.seq == seq {
			return e, true
		}
	}
	return seqEntry{}, false
}

// NewProducerID returns a fresh random producer id (never 0).
func (e *Engine) NewProducerID() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		if id := binary.LittleEndian.Uint64(b[:]) >> 1; id != 0 {
			return id
		}
	}
}

// producers is the writer's table.
type producers struct {
	m    map[uint64]*producerState
	tick uint64
	// pending holds, for the group being written, the next sequence each
	// producer may use, overlaying m.
	pending map[uint64]uint32
	// saved is the end offset the last checkpoint written or loaded
	// covers (0: none).
	saved uint64
}

func (ps *producers) get(id uint64) *producerState {
	if ps.m == nil {
		return nil
	}
	return ps.m[id]
}

// dedupe classifies an idempotent request before it is written: it
// returns done=true when r was answered (a duplicate gets its original
// offset; a gap or a too-old sequence gets ErrSequence).
func (ps *producers) dedupe(r *writerReq) (done bool) {
	if ps.pending == nil {
		ps.pending = map[uint64]uint32{}
	}
	want, inGroup := ps.pending[r.pid]
	st := ps.get(r.pid)
	if !inGroup && st != nil {
		last := st.last()
		want = nextSeq(r.pid, last.seq, last.count)
	}
	switch {
	case !inGroup && st == nil:
		// A producer never seen (or forgotten): take its sequence as is.
	case r.seq == want:
	case st != nil && !seqAfter(r.pid, r.seq, st.last().seq):
		if e, ok := st.find(r.seq); ok && e.count == r.count {
			r.base, r.err = e.base, nil
			return true
		}
		r.err = fmt.Errorf("%w: producer %d sequence %d is older than the last %d remembered", ErrSequence, r.pid, r.seq, seqWindow)
		return true
	case inGroup && seqAfter(r.pid, want, r.seq):
		r.err = fmt.Errorf("%w: producer %d sequence %d sent twice at once; retry", ErrStorage, r.pid, r.seq)
		return true
	default:
		r.err = fmt.Errorf("%w: producer %d sequence %d, expected %d (gap)", ErrSequence, r.pid, r.seq, want)
		return true
	}
	ps.pending[r.pid] = nextSeq(r.pid, r.seq, r.count)
	return false
}

// RecordSequenced is the producer-id bit (never set in an id from
// NewProducerID) that marks a producer whose sequence numbers count
// messages, as Kafka's do, instead of batches: its batch after sequence s
// of n messages has sequence s+n, and sequences wrap from 2^31-1 to 0.
// The Kafka listener sets it on the ids it maps onto.
const RecordSequenced uint64 = 1 << 63

// nextSeq returns the sequence that follows a batch of count messages with
// sequence seq from producer pid.
func nextSeq(pid uint64, seq, count uint32) uint32 {
	if pid&RecordSequenced != 0 {
		return (seq + count) & 0x7fffffff
	}
	return seq + 1
}

// seqAfter reports whether a comes after b, with wraparound (32-bit, or
// 31-bit for a RecordSequenced producer).
func seqAfter(pid uint64, a, b uint32) bool {
	if pid&RecordSequenced != 0 {
		return int32((a-b)<<1) > 0
	}
	return int32(a-b) > 0
}

// commit records appended idempotent requests.
func (ps *producers) commit(rs []*writerReq) {
	for _, r := range rs {
		if r.pid == 0 {
			continue
		}
		ps.remember(r.pid, seqEntry{seq: r.seq, base: r.base, count: r.count})
	}
}

func (ps *producers) remember(id uint64, e seqEntry) {
	if ps.m == nil {
		ps.m = map[uint64]*producerState{}
	}
	ps.tick++
	st := ps.m[id]
	if st == nil {
		if len(ps.m) >= maxProducers {
			ps.evict()
		}
		st = &producerState{}
		ps.m[id] = st
	}
	st.add(e)
	st.seen = ps.tick
}

func (ps *producers) evict() {
	var oldest uint64
	var when uint64 = ^uint64(0)
	for id, st := range ps.m {
		if st.seen < when {
			oldest, when = id, st.seen
		}
	}
	delete(ps.m, oldest)
}

// recover rebuilds the table when the topic opens: from its checkpoint
// (see producerfile.go) when one verifies and matches the log, plus the
// batches after it when it is older; else from the newest batches of the
// log.
func (ps *producers) recover(t *Topic) {
	if ps.fromCheckpoint(t) {
		return
	}
	*ps = producers{}
	found, _, _ := scanBatches(t, 0) // a failed scan is logged there
	ps.apply(found)
}

// scanBatches returns the idempotent batches among the newest
// recoverBatches batches of the topic at or after offset from, newest
// first, and the header of the batch just before from if it read it.
// whole reports that the scan reached from (or the topic's start); a
// segment that cannot be read stops the scan with whole false (the state
// it holds is unknown).
func scanBatches(t *Topic, from uint64) (found []seqRecord, before *record.Header, whole bool) {
	segs := t.segments()
	left := recoverBatches
	var failed error
	for i := len(segs) - 1; i >= 0 && left > 0 && !whole && failed == nil; i-- {
		s := segs[i]
		if s.Entries() == 0 {
			continue // an empty active segment
		}
		if !s.Acquire() {
			continue
		}
		failed = s.LastBatches(left, func(h *record.Header) bool {
			if h.BaseOffset < from {
				c := *h
				before, whole = &c, true
				return false
			}
			left--
			if h.ProducerID != 0 {
				found = append(found, seqRecord{h.ProducerID, seqEntry{h.Sequence, h.BaseOffset, h.Count}})
			}
			return left > 0
		})
		s.Release()
	}
	if failed != nil {
		t.e.opts.Logger.Warn("engine: producer state scan failed", "topic", t.name, "err", failed)
		return found, before, false
	}
	if left > 0 {
		whole = true // reached from, or read the whole log
	}
	return found, before, whole
}

// apply remembers found (newest first) oldest first.
func (ps *producers) apply(found []seqRecord) {
	for i := len(found) - 1; i >= 0; i-- {
		ps.remember(found[i].id, found[i].e)
	}
}

type seqRecord struct {
	id uint64
	e  seqEntry
}
