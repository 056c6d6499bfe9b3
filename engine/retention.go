package engine

import (
	"context"
	"fmt"

	"github.com/haraqa/haraqa/segment"
)

// applyRetention removes sealed segments from the front while they are
// older than RetentionAge or the topic holds more than RetentionBytes. The
// active segment is never removed. Readers holding a removed segment finish
// their reads; later reads below the new start get a *RangeError.
func (t *Topic) applyRetention() error {
	age, limit := t.e.opts.RetentionAge, t.e.opts.RetentionBytes
	if age <= 0 && limit <= 0 {
		return nil
	}
	now := t.e.opts.Now().UnixNano()
	return t.dropFront(func(s *segment.Segment, total int64) bool {
		return (age > 0 && now-s.LastTime() > int64(age)) || (limit > 0 && total > limit)
	})
}

// dropFront removes sealed segments from the front while drop says so.
// total is the topic's byte size including s.
func (t *Topic) dropFront(drop func(s *segment.Segment, total int64) bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.view.Load()
	segs := old.reader().segs
	var total int64
	for _, s := range segs {
		total += s.Size()
	}
	n := 0
	for n < len(segs)-1 && segs[n].Sealed() && drop(segs[n], total) {
		total -= segs[n].Size()
		n++
	}
	if n == 0 {
		return nil
	}
	cut := segs[n].Base()
	nv := old.clone()
	var gone []*segment.Segment
	for _, m := range nv.mirrors {
		i := 0
		for i < len(m.segs)-1 && m.segs[i].Base() < cut {
			i++
		}
		gone = append(gone, m.segs[:i]...)
		m.segs = m.segs[i:]
	}
	t.view.Store(nv)
	t.wake() // the start moved: watchers look again
	var first error
	for _, s := range gone {
		if err := s.Remove(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// TruncateBefore removes the whole segments that hold only offsets below
// offset and returns the topic's new start offset. The start moves in
// whole segments: when offset is the end offset, the active segment is
// rolled first so that everything can go.
func (e *Engine) TruncateBefore(ctx context.Context, topic string, offset uint64) (uint64, error) {
	t, err := e.topic(topic)
	if err != nil {
		return 0, err
	}
	return e.truncateTopic(ctx, t, offset)
}

// truncateTopic is TruncateBefore on a topic found (internal topics too).
func (e *Engine) truncateTopic(ctx context.Context, t *Topic, offset uint64) (uint64, error) {
	topic := t.name
	if end := t.end.Load(); offset > end {
		return 0, &RangeError{Topic: topic, Offset: offset, Start: t.segments()[0].Base(), End: end}
	}
	segs := t.segments()
	if act := segs[len(segs)-1]; act.Entries() > 0 && offset >= act.Next() {
		if _, err := t.submitCtl(ctx, &writerReq{op: opRoll}); err != nil {
			return 0, fmt.Errorf("engine: truncate %q: %w", topic, err)
		}
	}
	err := t.dropFront(func(s *segment.Segment, _ int64) bool { return s.Next() <= offset })
	return t.segments()[0].Base(), err
}
