package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/haraqa/haraqa/segment"
)

// Chunk is a run of whole batches in one segment, pinned until the
// ReadResult holding it is released.
type Chunk struct {
	seg   *segment.Segment
	Range segment.Range
}

// Data returns the chunk's bytes from the read-only mapping. Valid until
// the ReadResult is released; never write to it.
func (c Chunk) Data() []byte { return c.seg.Bytes(c.Range) }

// File returns the segment's log file for sendfile (bytes
// [Range.Pos, Range.End)), or nil on a fake file system.
func (c Chunk) File() *os.File { return c.seg.File() }

// ReadResult holds what Read found. Reuse one across reads: a warm
// ReadResult makes Read allocate nothing. Call Release when done with the
// bytes.
type ReadResult struct {
	Start, End uint64  // the topic's valid range [Start, End) at the read
	Chunks     []Chunk // whole batches, in offset order
	Bytes      int64   // total bytes of Chunks
}

// Next returns the offset after the last batch read, or 0 if none.
func (r *ReadResult) Next() uint64 {
	if len(r.Chunks) == 0 {
		return 0
	}
	return r.Chunks[len(r.Chunks)-1].Range.Next
}

// Current reports whether every segment the result reads is still part of
// its topic: none was removed (the topic deleted, truncated or trimmed by
// retention), repaired or taken out with its volume since the read. A
// topic deleted and created again under the same name has new segments.
func (r *ReadResult) Current() bool {
	for i := range r.Chunks {
		if r.Chunks[i].seg.Retired() {
			return false
		}
	}
	return true
}

// Release unpins the segments the result holds. It is safe to call twice.
func (r *ReadResult) Release() {
	for i := range r.Chunks {
		r.Chunks[i].seg.Release()
		r.Chunks[i] = Chunk{}
	}
	r.Chunks = r.Chunks[:0]
	r.Bytes = 0
}

// Read finds the whole batches that cover [offset, offset+limit), up to
// maxBytes (at least one batch whatever maxBytes says). The first batch may
// start before offset and the last may run past offset+limit: the caller
// trims. Reading at the end offset returns no chunks and no error (use
// Wait); an offset outside [start, end] is a *RangeError. Every returned
// batch passed its checksums unless Options.SkipReadVerify is set. A batch
// that fails on the read mirror is served from another; when none has it,
// Read returns the batches before it, and a read that starts at damaged
// offsets fails with a *CorruptError naming them (read on at its Next).
func (e *Engine) Read(topic string, offset, limit uint64, maxBytes int64, res *ReadResult) error {
	res.Release()
	t, err := e.topic(topic)
	if err != nil {
		return err
	}
	return e.readTopic(t, offset, limit, maxBytes, res)
}

// readTopic is Read on a topic found (internal topics too).
func (e *Engine) readTopic(t *Topic, offset, limit uint64, maxBytes int64, res *ReadResult) error {
	res.Release()
	topic := t.name
	if limit == 0 {
		limit = 1
	}
	relieved := false
	for attempt := 0; ; attempt++ {
		// end first, then the list: a list loaded after end holds every
		// offset below it (the writer adds a segment before publishing
		// offsets in it). The other order can miss a segment just rolled.
		end := t.end.Load()
		segs := t.segments()
		res.Start = segs[0].Base()
		res.End = max(end, res.Start)
		if offset < res.Start || offset > res.End {
			return &RangeError{Topic: topic, Offset: offset, Start: res.Start, End: res.End}
		}
		if offset == res.End {
			return nil
		}
		err := e.readSegments(t, segs, offset, limit, maxBytes, res)
		e.open.trim(e.opts.MaxOpenSegments)
		e.relieve(false)
		if rf, ok := err.(*resourceFail); ok {
			res.Release()
			if relieved {
				return e.resourceError(rf.what, rf.err)
			}
			relieved = true
			e.relieve(true)
			continue
		}
		if err == errRetry && attempt < 3 {
			res.Release()
			continue // retention removed a segment under us: look again
		}
		if err != nil {
			res.Release()
			if err == errRetry {
				return &RangeError{Topic: topic, Offset: offset, Start: t.segments()[0].Base(), End: t.end.Load()}
			}
		}
		if err == nil && len(res.Chunks) > 0 {
			upTo := res.Next()
			if want := offset + limit; want > offset && want < upTo {
				upTo = want
			}
			t.traffic.readMsgs.Add(int64(upTo - offset))
			t.traffic.readBytes.Add(res.Bytes)
		}
		return err
	}
}

var errRetry = fmt.Errorf("engine: retry read")

func (e *Engine) readSegments(t *Topic, segs []*segment.Segment, offset, limit uint64, maxBytes int64, res *ReadResult) error {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].Base() > offset }) - 1
	want := offset + limit
	if want < offset {
		want = ^uint64(0)
	}
	// Stop at the end loaded: a segment may already hold batches the writer
	// committed but has not published, and a reader that got them would
	// next read above the end it was told.
	want = min(want, res.End)
	for off := offset; i < len(segs) && off < want; i++ {
		s := segs[i]
		if !s.Acquire() {
			return errRetry
		}
		if off >= s.Next() {
			s.Release()
			continue
		}
		budget := maxBytes - res.Bytes
		if len(res.Chunks) > 0 && budget <= 0 {
			s.Release()
			break
		}
		done := e.admit(s) // within the descriptor budget, if it opens files
		r, err := s.Find(off, want-off, budget)
		done()
		if errors.Is(err, segment.ErrClosed) {
			s.Release()
			return errRetry // removed by retention before its first read
		}
		if err == nil && len(res.Chunks) > 0 && r.Len() > budget {
			s.Release()
			break
		}
		var good segment.Range
		if err == nil && !e.opts.SkipReadVerify {
			good, err = s.VerifyRange(r)
		}
		if isResource(err) {
			// Out of descriptors or mappings: not this copy's fault, so
			// no failover and no repair. Read lets files go and retries.
			s.Release()
			return &resourceFail{what: fmt.Sprintf("read topic %q offset %d", t.name, off), err: err}
		}
		if err != nil {
			// Serve the same batches from another mirror, and have the
			// writer repair this copy: a bad batch, a damaged index, a
			// file cut or gone on the read volume are all this copy's
			// trouble, not the topic's.
			if errors.Is(err, ErrCorrupt) {
				e.stats.corruptions.Add(1)
			}
			alt, ar, ok := e.failover(t, s, off, want-off, budget)
			switch {
			case ok && ar.Next > good.Next:
				s.Release()
				s, r = alt, ar
				if len(res.Chunks) > 0 && r.Len() > budget {
					s.Release()
					return nil
				}
			case good.Next > good.First:
				// No mirror has more: serve the good batches before the
				// damage; the read that starts at it reports it.
				if ok {
					alt.Release()
				}
				r = good
			default:
				if ok {
					alt.Release()
				}
				if len(res.Chunks) > 0 {
					s.Release()
					return nil // what came before the damage
				}
				if !errors.Is(err, ErrCorrupt) {
					s.Release()
					return fmt.Errorf("engine: topic %q offset %d: %w", t.name, off, err)
				}
				err = e.damage(t, s, off, res.End, err)
				e.reportDamage(t, s.Base()) // sealed or active: a peer may repair it
				s.Release()
				return err
			}
		}
		res.Chunks = append(res.Chunks, Chunk{seg: s, Range: r})
		res.Bytes += r.Len()
		off = r.Next
		if off < s.Next() {
			break // the byte budget or damage ended the run inside this segment
		}
	}
	return nil
}

// maxDamageScan bounds the batches one failed read looks at to name the
// damaged range.
const maxDamageScan = 4096

// damage names the damaged offsets at off, which no mirror can serve: the
// batch of s holding off and the batches around it in s (below end) that
// fail on s and on every other mirror too, so that every read in a damaged
// run names the same whole run. s is pinned.
func (e *Engine) damage(t *Topic, s *segment.Segment, off, end uint64, cause error) error {
	ce := &CorruptError{Topic: t.name, First: off, Next: off + 1, Err: cause}
	r, err := s.Find(off, 1, 0)
	if err != nil {
		return ce // the index itself is damaged: only off is known bad
	}
	ce.First, ce.Next = r.First, r.Next
	for n := 0; n < maxDamageScan && ce.First > s.Base(); n++ {
		r, ok := e.damagedBatch(t, s, ce.First-1)
		if !ok {
			break
		}
		ce.First = r.First
	}
	for n := 0; n < maxDamageScan && ce.Next < min(s.Next(), end); n++ {
		r, ok := e.damagedBatch(t, s, ce.Next)
		if !ok {
			break
		}
		ce.Next = r.Next
	}
	return ce
}

// damagedBatch returns the batch of s holding off and whether it is
// damaged on s and on every other mirror.
func (e *Engine) damagedBatch(t *Topic, s *segment.Segment, off uint64) (segment.Range, bool) {
	r, err := s.Find(off, 1, 0)
	if err != nil {
		return r, false
	}
	if _, err := s.VerifyRange(r); err == nil {
		return r, false
	}
	if alt, _, ok := e.findElsewhere(t, s, off, 1, 0); ok {
		alt.Release()
		return r, false
	}
	return r, true
}

// failover finds the batches at off on a mirror other than the one of bad,
// verifies them, and returns that mirror's segment (pinned) and range: the
// whole range, or the part before damage that copy has too. It queues a
// repair of bad's copy (best effort: the scrubber retries).
func (e *Engine) failover(t *Topic, bad *segment.Segment, off, limit uint64, budget int64) (*segment.Segment, segment.Range, bool) {
	s, r, ok := e.findElsewhere(t, bad, off, limit, budget)
	if !ok {
		return nil, segment.Range{}, false
	}
	e.stats.readFailovers.Add(1)
	v := t.view.Load()
	for _, m := range v.mirrors {
		if m.find(bad.Base()) == bad {
			rq := &writerReq{op: opRepair, vol: m.vol, base: bad.Base(), done: make(chan struct{}, 1)}
			t.trySend(rq)
		}
	}
	return s, r, true
}

// findElsewhere finds the batches at off on a mirror other than bad's and
// returns the longest verified run from off that one holds, pinned.
func (e *Engine) findElsewhere(t *Topic, bad *segment.Segment, off, limit uint64, budget int64) (*segment.Segment, segment.Range, bool) {
	var best *segment.Segment
	var br segment.Range
	for _, m := range t.view.Load().mirrors {
		s := m.find(bad.Base())
		if s == nil || s == bad || !s.Acquire() {
			continue
		}
		r, err := s.Find(off, limit, budget)
		if err == nil {
			var good segment.Range
			if good, err = s.VerifyRange(r); err != nil {
				r = good
			}
			if err == nil || (r.Next > r.First && (best == nil || r.Next > br.Next)) {
				if best != nil {
					best.Release()
				}
				best, br = s, r
				if err == nil {
					return best, br, true
				}
				continue
			}
		}
		s.Release()
	}
	return best, br, best != nil
}

// Offsets returns the topic's valid range [start, end).
func (e *Engine) Offsets(topic string) (start, end uint64, err error) {
	t, err := e.topic(topic)
	if err != nil {
		return 0, 0, err
	}
	return t.segments()[0].Base(), t.end.Load(), nil
}

// OffsetAt returns the offset of the first batch appended at or after tm,
// or the end offset when every batch is older.
func (e *Engine) OffsetAt(topic string, tm time.Time) (uint64, error) {
	t, err := e.topic(topic)
	if err != nil {
		return 0, err
	}
	ts := tm.UnixNano()
	segs := t.segments()
	for _, s := range segs {
		if s.LastTime() < ts || !s.Acquire() {
			continue
		}
		off, ok, err := s.FindTime(ts)
		s.Release()
		if errors.Is(err, segment.ErrClosed) {
			continue // removed by retention meanwhile
		}
		if isResource(err) && s.Acquire() {
			e.relieve(true) // and once more
			off, ok, err = s.FindTime(ts)
			s.Release()
		}
		if isResource(err) {
			return 0, e.resourceError(fmt.Sprintf("topic %q offset by time", topic), err)
		}
		if err != nil {
			return 0, fmt.Errorf("engine: topic %q: %w", topic, err)
		}
		if ok {
			return off, nil
		}
	}
	return t.end.Load(), nil
}

// WaitChange blocks until the topic's range differs from [start, end) —
// an append moved the end, or retention or truncation moved the start —
// or ctx is done, the topic is deleted or the engine closes. Watches use
// it; nothing polls.
func (e *Engine) WaitChange(ctx context.Context, topic string, start, end uint64) error {
	return e.waitFor(ctx, topic, func(t *Topic) bool {
		return t.end.Load() != end || t.segments()[0].Base() != start
	})
}

// Wait blocks until the topic's end passes offset (data at offset can be
// read), ctx is done, the topic is deleted or the engine closes. Woken by
// the writer; nothing polls.
func (e *Engine) Wait(ctx context.Context, topic string, offset uint64) error {
	return e.waitFor(ctx, topic, func(t *Topic) bool { return t.end.Load() > offset })
}

// Waiters returns how many Wait and WaitChange calls on topic are parked
// (or on their way to park): whoever just moved the topic's end woke them.
func (e *Engine) Waiters(topic string) int {
	t, err := e.anyTopic(topic)
	if err != nil {
		return 0
	}
	return int(t.waiters.Load())
}

// waitFor parks until done(t) holds, rechecking each time the topic's
// writer (or retention) signals a change.
func (e *Engine) waitFor(ctx context.Context, topic string, done func(*Topic) bool) error {
	t, err := e.topic(topic)
	if err != nil {
		return err
	}
	t.waiters.Add(1)
	defer t.waiters.Add(-1)
	for {
		ch := t.changed.Load()
		if done(t) {
			return nil
		}
		if t.deleted.Load() {
			return fmt.Errorf("%w: %q", ErrTopicNotFound, topic)
		}
		select {
		case <-*ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-e.stop:
			return ErrClosed
		}
	}
}
