package engine

import (
	"context"
	"fmt"

	"github.com/haraqa/haraqa/segment"
)

// SkipTo moves the start and the end of a topic that ends below offset up
// to offset: every segment is removed and the topic continues, empty, at
// offset (the next append gets it). It is for a replica of a replicated log
// whose peers' retention removed the offsets it lacks (package cluster):
// it drops what it holds below the peers' start, as retention would have,
// and fetches on from there. A topic that ends at or past offset is left
// as it is. It returns the topic's end.
//
// Crash safety: the old segments are removed (oldest first, each removal
// synced) before the new one is created, so a crash leaves a suffix of the
// old log, or no segment (the topic reopens empty at 0), never a gap.
func (e *Engine) SkipTo(ctx context.Context, topic string, offset uint64) (uint64, error) {
	t, err := e.topic(topic)
	if err != nil {
		return 0, err
	}
	return t.submitCtl(ctx, &writerReq{op: opSkip, base: offset})
}

// skipTo runs SkipTo on the writer goroutine.
func (w *writer) skipTo(off uint64) error {
	if off <= w.next {
		return nil
	}
	if err := w.t.readOnlyErr(); err != nil {
		return err
	}
	ms := w.mirrors()
	if len(ms) < w.opts.MinVolumes {
		return fmt.Errorf("%w: topic %q: %d healthy volumes, %d needed", ErrStorage, w.t.name, len(ms), w.opts.MinVolumes)
	}
	if err := w.each(ms, stepDrop); err != nil {
		// Some files may be gone on every volume: the log can no longer be
		// trusted to hold what its view says.
		rerr := fmt.Errorf("%w: %q: skipping to offset %d failed midway: %w", ErrReadOnly, w.t.name, off, err)
		w.t.setReadOnly(rerr)
		w.t.e.opts.Logger.Error("engine: skip failed midway; topic read-only", "topic", w.t.name, "err", err)
		return rerr
	}
	ms = w.mirrors()
	prev := w.next
	w.next = off
	w.created = make([]*segment.Segment, len(ms))
	created := w.created
	if err := w.each(ms, stepCreate); err != nil {
		for _, s := range created {
			if s != nil {
				s.Remove()
			}
		}
		w.next = prev
		rerr := fmt.Errorf("%w: %q: skipping to offset %d: %w", ErrReadOnly, w.t.name, off, err)
		w.t.setReadOnly(rerr)
		w.t.e.opts.Logger.Error("engine: skip failed midway; topic read-only", "topic", w.t.name, "err", err)
		return rerr
	}
	w.t.mu.Lock()
	nv := w.t.view.Load().clone()
	var keep []*mirror
	for _, nm := range nv.mirrors {
		for i, m := range ms {
			if m.vol == nm.vol && created[i] != nil {
				nm.segs = []*segment.Segment{created[i]}
				keep = append(keep, nm)
			}
		}
	}
	nv.mirrors = keep
	w.t.view.Store(nv)
	w.t.mu.Unlock()
	w.dirty = false
	w.t.synced.Store(off)
	w.t.publish(off)
	w.t.wake() // the start moved: watchers look again
	w.saveProducers(w.mirrors())
	return nil
}
