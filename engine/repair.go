package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/haraqa/haraqa/segment"
)

func (c *topicCopy) get(b uint64) *copySeg {
	for i := range c.segs {
		if c.segs[i].base == b {
			return &c.segs[i]
		}
	}
	return nil
}

// better reports whether a holds more of a segment than b.
func better(a, b *segment.Segment) bool {
	if a.Next() != b.Next() {
		return a.Next() > b.Next()
	}
	return a.Sealed() && !b.Sealed()
}

// reconcile makes the copies of a topic agree, by these rules:
//
//  1. For each segment base found on any copy, the source is the undamaged
//     copy of that segment holding the most (highest next offset; sealed
//     before open). A damaged copy is never a source. Good copies are
//     never cut to match a shorter one.
//  2. If no copy of a segment is undamaged, the topic is damaged: the copy
//     with the most readable data is kept, reads of the damaged offsets
//     fail with ErrCorrupt, and the topic is read-only.
//  3. Every copy whose segment differs from the source (missing, shorter,
//     damaged, unsealed where the source is sealed) gets a verified copy of
//     the source (segment.CopyTo: temporary file, sync, rename, sync dir).
//  4. Only when the topic is undamaged are segments that no source keeps
//     (left over on one copy) deleted: nothing acknowledged is ever removed
//     to make copies agree.
//
// A copy whose volume fails during repair is fenced and left out.
func (t *Topic) reconcile(copies []*topicCopy) (*view, error, error) {
	e := t.e
	if len(copies) == 0 {
		return nil, nil, fmt.Errorf("%w: topic %q: no healthy volume to open it on", ErrStorage, t.name)
	}
	seen := map[uint64]bool{}
	var bases []uint64
	for _, c := range copies {
		for _, cs := range c.segs {
			if !seen[cs.base] {
				seen[cs.base] = true
				bases = append(bases, cs.base)
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	var layout []*segment.Segment
	var damage error
	for _, b := range bases {
		var src *segment.Segment
		var bad error
		for _, c := range copies {
			cs := c.get(b)
			switch {
			case cs == nil:
			case cs.err != nil || cs.seg == nil:
				bad = cmpErr(bad, cs.err)
			case src == nil || better(cs.seg, src):
				src = cs.seg
			}
		}
		if src == nil {
			for _, c := range copies {
				if cs := c.get(b); cs != nil && cs.seg != nil && (src == nil || cs.seg.Next() > src.Next()) {
					src = cs.seg
				}
			}
			damage = cmpErr(damage, bad)
			if src == nil {
				break // nothing readable at this base: the log stops here
			}
		}
		if n := len(layout); n > 0 && layout[n-1].Next() != b {
			damage = cmpErr(damage, fmt.Errorf("%w: topic %q: segment %d follows one that ends at %d", ErrCorrupt, t.name, b, layout[n-1].Next()))
			break
		}
		layout = append(layout, src)
	}

	v := &view{}
	for _, c := range copies {
		m, err := t.reconcileCopy(c, layout, damage == nil)
		if err != nil {
			c.vol.fence(err)
			e.opts.Logger.Error("engine: volume fenced during repair", "volume", c.vol.dir, "topic", t.name, "err", err)
			continue
		}
		if m != nil {
			v.mirrors = append(v.mirrors, m)
		}
	}
	if len(v.mirrors) == 0 {
		if damage != nil {
			return nil, nil, fmt.Errorf("engine: topic %q: nothing readable: %w", t.name, damage)
		}
		return nil, nil, fmt.Errorf("%w: topic %q: no copy could be opened", ErrStorage, t.name)
	}
	return v, damage, nil
}

// cmpErr keeps the first error.
func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// reconcileCopy turns one copy into a mirror of layout, repairing what
// differs. It returns nil (and no error) when the copy cannot mirror a
// damaged layout; the copy's files are then left alone.
func (t *Topic) reconcileCopy(c *topicCopy, layout []*segment.Segment, prune bool) (*mirror, error) {
	e := t.e
	if err := e.fs.MkdirAll(c.dir); err != nil {
		return nil, err
	}
	m := &mirror{vol: c.vol, dir: c.dir}
	if len(layout) == 0 {
		for _, cs := range c.segs {
			if cs.seg != nil {
				cs.seg.Retire()
			}
		}
		if !prune {
			return nil, nil
		}
		s, err := segment.Create(e.fs, c.dir, 0, e.opts.segmentOptions())
		if err != nil {
			return nil, err
		}
		m.segs = []*segment.Segment{s}
		return m, e.fs.SyncDir(c.vol.path(topicsDir))
	}
	keep := map[uint64]bool{}
	for _, src := range layout {
		keep[src.Base()] = true
		cs := c.get(src.Base())
		if cs != nil && cs.seg != nil && (cs.seg == src || cs.seg.SameAs(src)) {
			m.segs = append(m.segs, cs.seg)
			continue
		}
		if src.Damaged() != nil {
			// The source itself is damaged: this copy cannot mirror it.
			closeCopy(c, m)
			return nil, nil
		}
		fixed, err := t.copySegment(src, c.dir)
		if err != nil {
			closeCopy(c, m)
			return nil, err
		}
		if cs != nil && cs.seg != nil {
			cs.seg.Retire() // its files were just replaced
		}
		e.opts.Logger.Warn("engine: repaired segment from a mirror", "topic", t.name, "volume", c.vol.dir,
			"segment", src.Base(), "from", src.Dir())
		m.segs = append(m.segs, fixed)
	}
	for _, cs := range c.segs {
		if keep[cs.base] {
			continue
		}
		if !prune {
			if cs.seg != nil {
				cs.seg.Retire()
			}
			continue
		}
		if cs.seg != nil {
			if err := cs.seg.Remove(); err != nil {
				return nil, err
			}
			continue
		}
		for _, name := range []string{segment.SealName(cs.base), segment.IndexName(cs.base), segment.LogName(cs.base)} {
			if err := e.fs.Remove(filepath.Join(c.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
	}
	return m, nil
}

// closeCopy retires the segments of a copy that did not become a mirror,
// except those already taken into m (which are retired too).
func closeCopy(c *topicCopy, m *mirror) {
	for _, cs := range c.segs {
		if cs.seg != nil {
			cs.seg.Retire()
		}
	}
	for _, s := range m.segs {
		s.Retire()
	}
}

// copySegment copies a verified source segment into dir and counts it.
func (t *Topic) copySegment(src *segment.Segment, dir string) (*segment.Segment, error) {
	if !src.Acquire() {
		return nil, fmt.Errorf("engine: repair source segment %d is gone", src.Base())
	}
	defer src.Release()
	s, n, err := src.CopyTo(t.e.fs, dir, t.e.opts.segmentOptions())
	if err != nil {
		return nil, err
	}
	t.e.stats.repairs.Add(1)
	t.e.stats.bytesRepaired.Add(n)
	return s, nil
}

// repairSegment replaces a damaged segment of vol's mirror with a copy from
// another mirror whose copy verifies. It runs on the topic's writer
// goroutine, so no write races it.
func (w *writer) repairSegment(vol *Volume, base uint64) error {
	t := w.t
	v := t.view.Load()
	var bad *mirror
	for _, m := range v.mirrors {
		if m.vol == vol {
			bad = m
		}
	}
	if bad == nil || bad.find(base) == nil {
		return nil // the mirror or segment went away meanwhile
	}
	old := bad.find(base)
	if old.Acquire() {
		err := old.Verify()
		old.Release()
		if err == nil {
			return nil // repaired already
		}
	}
	for _, m := range v.mirrors {
		src := m.find(base)
		if m == bad || src == nil || !src.Acquire() {
			continue
		}
		err := src.Verify()
		src.Release()
		if err != nil {
			continue
		}
		fixed, err := t.copySegment(src, bad.dir)
		if err != nil {
			return err
		}
		t.mu.Lock()
		nv := t.view.Load().clone()
		for _, nm := range nv.mirrors {
			if nm.vol == vol {
				for i, s := range nm.segs {
					if s == old {
						nm.segs[i] = fixed
					}
				}
			}
		}
		t.view.Store(nv)
		t.mu.Unlock()
		old.Retire()
		t.e.opts.Logger.Warn("engine: repaired segment from a mirror", "topic", t.name, "volume", vol.dir, "segment", base, "from", m.vol.dir)
		return nil
	}
	return fmt.Errorf("%w: topic %q segment %d: no mirror holds a good copy", ErrCorrupt, t.name, base)
}

// rejoin rebuilds vol's mirror of the topic from the reading mirror and
// adds it to the view. It runs on the writer goroutine: no append happens
// while it copies, so the new mirror is complete when it joins.
func (w *writer) rejoin(vol *Volume) error {
	t := w.t
	v := t.view.Load()
	for _, m := range v.mirrors {
		if m.vol == vol {
			return nil
		}
	}
	src := v.reader()
	c, err := openCopy(t.e, vol, t.name, false)
	if err != nil {
		return err
	}
	var layout []*segment.Segment
	layout = append(layout, src.segs...)
	m, err := t.reconcileCopy(c, layout, true)
	if err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("%w: topic %q: the reading mirror is damaged", ErrCorrupt, t.name)
	}
	t.mu.Lock()
	t.view.Store(t.view.Load().with(m, t.e.vols))
	t.mu.Unlock()
	return nil
}

// strayTopics lists topic directories on vol that the engine does not know.
func (e *Engine) strayTopics(vol *Volume) []string {
	names, _ := e.fs.List(vol.path(topicsDir))
	var out []string
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, n := range names {
		if _, ok := e.topics[n]; !ok && ValidTopic(n) == nil {
			out = append(out, n)
		}
	}
	return out
}

var _ = strconv.Itoa
var _ = strings.HasPrefix
