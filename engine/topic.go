package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/haraqa/haraqa/segment"
)

// Topic is one append-only log: a list of segments, the newest of which
// (the active one) takes appends from the topic's single writer goroutine.
type Topic struct {
	e    *Engine
	name string
	dir  string

	// mu serialises changes of the segment list (the writer's roll,
	// retention, truncation, deletion). Readers never take it: they load
	// segs and pin what they read.
	mu   sync.Mutex
	segs atomic.Pointer[[]*segment.Segment] // copy-on-write, oldest first, never empty

	// end is the offset after the last acknowledged-visible message.
	// Invariant: every message below end is committed in a segment (and,
	// under FsyncAlways, synced) before end moves past it.
	end atomic.Uint64
	// changed is closed and replaced when end moves while waiters > 0.
	changed atomic.Pointer[chan struct{}]
	waiters atomic.Int32

	// readOnly holds the reason the topic accepts no writes, if any.
	readOnly atomic.Pointer[error]
	deleted  atomic.Bool

	reqs chan *appendReq
	quit chan struct{}
	done chan struct{}
	w    writer // owned by the writer goroutine
}

func topicDir(e *Engine, name string) string { return e.path(topicsDir, name) }

func newTopic(e *Engine, name string) *Topic {
	t := &Topic{e: e, name: name, dir: topicDir(e, name),
		reqs: make(chan *appendReq, e.opts.QueueLen), quit: make(chan struct{}), done: make(chan struct{})}
	ch := make(chan struct{})
	t.changed.Store(&ch)
	return t
}

func createTopic(e *Engine, name string) (*Topic, error) {
	t := newTopic(e, name)
	if names, err := e.fs.List(t.dir); err == nil && len(names) > 0 {
		// Files of a topic left offline (or not fully deleted): never mix
		// a new topic's segments with them.
		return nil, fmt.Errorf("%w: %q has files on disk", ErrTopicExists, name)
	}
	if err := e.fs.MkdirAll(t.dir); err != nil {
		return nil, fmt.Errorf("engine: create topic %q: %w", name, err)
	}
	s, err := segment.Create(e.fs, t.dir, 0, e.opts.segmentOptions())
	if err != nil {
		return nil, fmt.Errorf("engine: create topic %q: %w", name, err)
	}
	if err := e.fs.SyncDir(e.path(topicsDir)); err != nil {
		s.Remove()
		return nil, fmt.Errorf("engine: create topic %q: %w", name, err)
	}
	t.setSegments([]*segment.Segment{s})
	t.start()
	return t, nil
}

// openTopic recovers a topic directory. Stray temporary files are removed;
// segments are opened oldest first, the newest with a torn-tail check.
// Damage that is not a torn tail leaves the topic read-only, readable up to
// the damage.
func openTopic(e *Engine, name string, clean bool) (*Topic, error) {
	t := newTopic(e, name)
	entries, err := e.fs.List(t.dir)
	if err != nil {
		return nil, fmt.Errorf("engine: open topic %q: %w", name, err)
	}
	var bases []uint64
	for _, ent := range entries {
		switch {
		case strings.HasSuffix(ent, ".tmp"):
			if err := e.fs.Remove(filepath.Join(t.dir, ent)); err != nil {
				return nil, fmt.Errorf("engine: open topic %q: %w", name, err)
			}
		case strings.HasSuffix(ent, ".log"):
			b, err := strconv.ParseUint(strings.TrimSuffix(ent, ".log"), 10, 64)
			if err != nil || segment.LogName(b) != ent {
				e.opts.Logger.Warn("engine: ignoring unknown file", "topic", name, "file", ent)
				continue
			}
			bases = append(bases, b)
		}
	}
	var segs []*segment.Segment
	var damage error
	for i, b := range bases {
		s, rep, err := segment.Open(e.fs, t.dir, b, e.opts.segmentOptions(), clean, i == len(bases)-1)
		if err != nil && !errors.Is(err, segment.ErrCorrupt) {
			closeAll(segs)
			return nil, fmt.Errorf("engine: open topic %q: %w", name, err)
		}
		if rep.TornBytes > 0 {
			e.opts.Logger.Warn("engine: cut torn tail", "topic", name, "segment", b, "bytes", rep.TornBytes)
		}
		if rep.IndexRebuilt {
			e.opts.Logger.Info("engine: rebuilt index", "topic", name, "segment", b)
		}
		if s == nil {
			damage = err
			break
		}
		if len(segs) > 0 && segs[len(segs)-1].Next() != b {
			s.Release()
			damage = fmt.Errorf("%w: topic %q: segment %d follows one that ends at %d", segment.ErrCorrupt, name, b, segs[len(segs)-1].Next())
			break
		}
		segs = append(segs, s)
		if err != nil {
			damage = err
			break
		}
	}
	if damage != nil {
		e.opts.Logger.Error("engine: topic damaged; read-only up to the damage", "topic", name, "err", damage)
		t.setReadOnly(fmt.Errorf("%w: %w", ErrReadOnly, damage))
	}
	if len(segs) == 0 {
		if damage != nil {
			return nil, fmt.Errorf("engine: open topic %q: %w", name, damage)
		}
		s, err := segment.Create(e.fs, t.dir, 0, e.opts.segmentOptions())
		if err != nil {
			return nil, fmt.Errorf("engine: open topic %q: %w", name, err)
		}
		segs = []*segment.Segment{s}
	}
	t.setSegments(segs)
	t.end.Store(segs[len(segs)-1].Next())
	t.start()
	return t, nil
}

func closeAll(segs []*segment.Segment) {
	for _, s := range segs {
		s.Release()
	}
}

func (t *Topic) segments() []*segment.Segment { return *t.segs.Load() }

func (t *Topic) setSegments(s []*segment.Segment) { t.segs.Store(&s) }

func (t *Topic) setReadOnly(err error) { t.readOnly.Store(&err) }

func (t *Topic) readOnlyErr() error {
	if p := t.readOnly.Load(); p != nil {
		return *p
	}
	return nil
}

func (t *Topic) start() {
	t.w.init(t)
	go t.w.run()
}

// stopWriter stops the writer goroutine after it finished what it holds;
// queued appends fail with err.
func (t *Topic) stopWriter() {
	select {
	case <-t.quit:
	default:
		close(t.quit)
	}
	<-t.done
}

// close stops the writer and closes the segments for a clean shutdown.
func (t *Topic) close() error {
	t.stopWriter()
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, s := range t.segments() {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	t.wake()
	return errors.Join(errs...)
}

// remove stops the writer and deletes every file of the topic.
func (t *Topic) remove() error {
	t.deleted.Store(true)
	t.stopWriter()
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, s := range t.segments() {
		if err := s.Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if names, err := t.e.fs.List(t.dir); err == nil {
		for _, n := range names {
			errs = append(errs, t.e.fs.Remove(filepath.Join(t.dir, n)))
		}
	}
	errs = append(errs, t.e.fs.Remove(t.dir), t.e.fs.SyncDir(t.e.path(topicsDir)))
	t.wake()
	return errors.Join(errs...)
}

// wake releases every waiter so it rechecks the topic's state.
func (t *Topic) wake() {
	ch := make(chan struct{})
	old := t.changed.Swap(&ch)
	close(*old)
}

// publish moves end and wakes waiters, if any.
func (t *Topic) publish(end uint64) {
	t.end.Store(end)
	if t.waiters.Load() > 0 {
		t.wake()
	}
}
