package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/haraqa/haraqa/segment"
)

func (c *foundMirror) get(b uint64) *foundSeg {
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

// reconcile makes the mirrors of a topic agree, by these rules:
//
//  1. For each segment base found on any mirror, the source is the undamaged
//     mirror's copy of that segment holding the most (highest next offset; sealed
//     before open). A damaged copy is never a source. Good mirrors are
//     never cut to match a shorter one.
//  2. If no mirror's copy of a segment is undamaged, the topic is damaged: the copy
//     with the most readable data is kept, reads of the damaged offsets
//     fail with ErrCorrupt, and the topic is read-only.
//  3. Every mirror whose segment differs from the source (missing, shorter,
//     damaged, unsealed where the source is sealed) gets a verified copy of
//     the source (segment.CopyTo: temporary file, sync, rename, sync dir).
//  4. Segments below a gap that only mirrors holding none of the segments
//     above it have are what a volume out of service kept while retention
//     or truncation removed them from the others: the topic starts above
//     the gap and those leftovers are deleted (loudly).
//  5. Only when the topic is undamaged are segments that no source keeps
//     (left over on one mirror) deleted: nothing acknowledged is ever removed
//     to make mirrors agree.
//
// A mirror whose volume fails during repair is fenced and left out. The
// segments of mirrors left out are let go only at the end: they may be the
// sources other mirrors were rebuilt from.
//
// It returns the topic's view; damage, when rule 2 applied (the topic
// opens read-only); and err, when the topic cannot be opened at all.
func (t *Topic) reconcile(mirrors []*foundMirror) (v *view, damage, err error) {
	e := t.e
	if len(mirrors) == 0 {
		return nil, nil, fmt.Errorf("%w: topic %q: no healthy volume to open it on", ErrStorage, t.name)
	}
	seen := map[uint64]bool{}
	var bases []uint64
	for _, c := range mirrors {
		for _, cs := range c.segs {
			if !seen[cs.base] {
				seen[cs.base] = true
				bases = append(bases, cs.base)
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	picks := make([]pick, len(bases))
	for i, b := range bases {
		picks[i] = pickSource(mirrors, b)
	}
	bases, picks = t.dropStale(mirrors, bases, picks)
	t.reportShort(mirrors, bases, picks)

	var layout []*segment.Segment
	for i, b := range bases {
		p := picks[i]
		if p.bad != nil {
			damage = cmpErr(damage, p.bad)
			if p.src == nil {
				break // nothing readable at this base: the log stops here
			}
		}
		if n := len(layout); n > 0 && layout[n-1].Next() != b {
			damage = cmpErr(damage, fmt.Errorf("%w: topic %q: segment %d follows one that ends at %d", ErrCorrupt, t.name, b, layout[n-1].Next()))
			break
		}
		layout = append(layout, p.src)
	}

	// The other undamaged copies of a segment holding the same data: the
	// sources to use when the chosen one turns out damaged while copied.
	sources := func(s *segment.Segment) []source {
		out := []source{{seg: s}}
		for _, c := range mirrors {
			cs := c.get(s.Base())
			switch {
			case cs == nil || cs.seg == nil:
			case cs.seg == s:
				out[0].vol = c.vol
			case cs.err == nil && cs.seg.SameAs(s):
				out = append(out, source{seg: cs.seg, vol: c.vol})
			}
		}
		return out
	}
	var bad []badSource
	v = &view{}
	var drop []*segment.Segment
	for _, c := range mirrors {
		m, ok, err := t.reconcileMirror(c, layout, damage == nil, sources, &bad)
		if err != nil {
			e.fenceVolume(c.vol, fmt.Errorf("topic %q: repair: %w", t.name, err))
		}
		if ok && err == nil {
			v.mirrors = append(v.mirrors, m)
			continue
		}
		drop = append(drop, copySegments(c, m)...)
	}
	for _, s := range drop {
		s.Retire()
	}
	if len(v.mirrors) == 0 {
		if damage != nil {
			return nil, nil, fmt.Errorf("engine: topic %q: nothing readable: %w", t.name, damage)
		}
		return nil, nil, fmt.Errorf("%w: topic %q: no copy could be opened", ErrStorage, t.name)
	}
	t.queueRepairs(bad) // the caller starts the writer
	return v, damage, nil
}

// reportShort reports the copies that end in zeros alone short of the
// synced offset (foundSeg.short). Zeros written ahead of the active log
// stay on a volume fenced while the topic goes on elsewhere: when another
// mirror's undamaged copy holds more of the segment, such a copy was left
// behind, not damaged, and is caught up like any shorter copy (as one
// ending at its last batch always was); so is one that dropStale found a
// leftover below the topic's start. Otherwise synced messages are
// missing from every copy: corruption, counted and logged as such.
func (t *Topic) reportShort(mirrors []*foundMirror, bases []uint64, picks []pick) {
	for _, c := range mirrors {
		for _, cs := range c.segs {
			if !cs.short {
				continue
			}
			i := slices.Index(bases, cs.base)
			if i < 0 {
				continue // a leftover below the topic's start (dropStale): deleted, and said so
			}
			if picks[i].bad == nil && picks[i].src != nil && picks[i].src.Next() > cs.seg.Next() {
				t.e.opts.Logger.Warn("engine: copy ends in zeros short of the synced offset; caught up from a mirror holding more",
					"topic", t.name, "volume", c.vol.dir, "segment", cs.base, "next", cs.seg.Next(), "source next", picks[i].src.Next())
				continue
			}
			t.e.stats.corruptions.Add(1)
			t.e.opts.Logger.Error("engine: damaged segment", "topic", t.name, "volume", c.vol.dir, "segment", cs.base, "err", cs.err)
		}
	}
}

// pick is the source chosen for one segment base.
type pick struct {
	src *segment.Segment // nil when no copy could be opened
	bad error            // set when no copy is undamaged
}

// pickSource chooses the source of segment b: the mirror's undamaged copy holding
// the most; failing that, the damaged copy with the most readable data.
func pickSource(mirrors []*foundMirror, b uint64) pick {
	var p pick
	var bad error
	for _, c := range mirrors {
		cs := c.get(b)
		switch {
		case cs == nil:
		case cs.err != nil || cs.seg == nil:
			bad = cmpErr(bad, cs.err)
		case p.src == nil || better(cs.seg, p.src):
			p.src = cs.seg
		}
	}
	if p.src != nil {
		return p
	}
	p.bad = bad
	for _, c := range mirrors {
		if cs := c.get(b); cs != nil && cs.seg != nil && (p.src == nil || cs.seg.Next() > p.src.Next()) {
			p.src = cs.seg
		}
	}
	return p
}

// dropStale applies rule 4 of reconcile: it finds the run of joined
// segments that ends at the newest one, and if segments below it are held
// only by mirrors holding nothing of the run, drops them from bases.
func (t *Topic) dropStale(mirrors []*foundMirror, bases []uint64, picks []pick) ([]uint64, []pick) {
	k := len(bases) - 1
	if k < 0 || picks[k].src == nil || picks[k].bad != nil {
		return bases, picks
	}
	for k > 0 && picks[k-1].src != nil && picks[k-1].src.Next() == bases[k] {
		k--
	}
	if k == 0 {
		return bases, picks
	}
	var stale []string
	for _, c := range mirrors {
		lower, upper := false, false
		for _, cs := range c.segs {
			if cs.base < bases[k] {
				lower = true
			} else {
				upper = true
			}
		}
		if lower && upper {
			return bases, picks // a hole in the log itself: damage
		}
		if lower {
			stale = append(stale, c.vol.dir)
		}
	}
	t.e.opts.Logger.Warn("engine: deleting segments that only volumes out of date hold, below the topic's start on the others",
		"topic", t.name, "volumes", stale, "start", bases[k], "segments", k)
	return bases[k:], picks[k:]
}

// cmpErr keeps the first error.
func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// reconcileMirror turns one mirror as found at open into a mirror of layout, repairing what
// differs. ok is false (and err nil) when the found mirror cannot follow a damaged
// layout: its files are then left alone. When ok is false or err is set,
// m holds the segments made so far and the caller lets them and the
// copy's own go (see copySegments).
//
// sources(src) lists the copies of src's segment to copy from, src first
// (see copyFromSources); source copies found damaged are added to *bad.
func (t *Topic) reconcileMirror(c *foundMirror, layout []*segment.Segment, prune bool,
	sources func(*segment.Segment) []source, bad *[]badSource) (m *mirror, ok bool, err error) {
	e := t.e
	m = &mirror{vol: c.vol, dir: c.dir}
	// Segments copied into a directory made here are durable only once
	// its entry in topics/ is.
	if err := mkdirDurable(e.fs, c.dir); err != nil {
		return m, false, err
	}
	if len(layout) == 0 {
		if !prune {
			return m, false, nil
		}
		s, err := segment.Create(e.fs, c.dir, 0, e.opts.segmentOptions())
		if err != nil {
			return m, false, err
		}
		m.segs = []*segment.Segment{s}
		if err := e.fs.SyncDir(c.vol.path(topicsDir)); err != nil {
			return m, false, err
		}
		return m, true, nil
	}
	keep := map[uint64]bool{}
	copied := false
	for _, src := range layout {
		keep[src.Base()] = true
		cs := c.get(src.Base())
		if cs != nil && cs.seg != nil && (cs.seg == src || cs.seg.SameAs(src)) {
			m.segs = append(m.segs, cs.seg)
			continue
		}
		if src.Damaged() != nil {
			// The source itself is damaged: this copy cannot mirror it.
			return m, false, nil
		}
		if e.stopping() {
			return m, false, ErrClosed // shutdown: the next open goes on
		}
		fixed, err := t.copyFromSources(sources(src), c.dir, bad)
		if errors.Is(err, errNoGoodSource) {
			// Damaged on every copy, and not copyable as it is.
			return m, false, nil
		}
		if err != nil {
			return m, false, err
		}
		if cs != nil && cs.seg != nil {
			cs.seg.Retire() // its files were just replaced; never a source
		}
		e.opts.Logger.Warn("engine: repaired segment from a mirror", "topic", t.name, "volume", c.vol.dir,
			"segment", src.Base(), "from", src.Dir())
		m.segs = append(m.segs, fixed)
		copied = true
	}
	if copied {
		t.copyProducers(layout[len(layout)-1].Dir(), c.dir)
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
				return m, false, err
			}
			continue
		}
		for _, name := range []string{segment.SealName(cs.base), segment.IndexName(cs.base), segment.LogName(cs.base)} {
			if err := e.fs.Remove(filepath.Join(c.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return m, false, err
			}
		}
	}
	return m, true, nil
}

// copySegments returns every segment of a copy and of the mirror made
// from it (m may be nil), for letting them go.
func copySegments(c *foundMirror, m *mirror) []*segment.Segment {
	var out []*segment.Segment
	for _, cs := range c.segs {
		if cs.seg != nil {
			out = append(out, cs.seg)
		}
	}
	if m != nil {
		out = append(out, m.segs...)
	}
	return out
}

// copySegment copies a verified source segment into dir and counts it.
func (t *Topic) copySegment(src *segment.Segment, dir string) (*segment.Segment, error) {
	if !src.Acquire() {
		return nil, fmt.Errorf("engine: repair source segment %d is gone", src.Base())
	}
	defer src.Release()
	opts := t.e.opts.segmentOptions()
	opts.Stop = t.e.stop // shutdown does not wait for a large copy
	s, n, err := src.CopyTo(t.e.fs, dir, opts)
	if errors.Is(err, segment.ErrStopped) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, err
	}
	t.e.stats.repairs.Add(1)
	t.e.stats.bytesRepaired.Add(n)
	return s, nil
}

// repairSegment replaces a damaged segment of vol's mirror with a copy from
// another mirror whose copy verifies. It runs on the topic's writer
// goroutine, so no write races it. A failure to write the copy fences vol
// if it is still in service.
func (w *writer) repairSegment(vol *Volume, base uint64) error {
	t := w.t
	if vol == nil || !vol.healthy() {
		return nil // out of service: it is rebuilt whole when it returns
	}
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
		if isResource(err) {
			return t.e.resourceError(fmt.Sprintf("repair topic %q segment %d", t.name, base), err)
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
		if errors.Is(err, ErrCorrupt) {
			continue // failed its check while copied: try another mirror
		}
		if errors.Is(err, ErrClosed) {
			return err // shutdown; the scrubber finds it again
		}
		if isResource(err) {
			return t.e.resourceError(fmt.Sprintf("repair topic %q segment %d", t.name, base), err)
		}
		if err != nil {
			// Only if vol is still in service: it may have been fenced
			// (by another topic's failure) and its rebuild begun while
			// this copy ran; fencing it again would fail that rebuild.
			t.e.fenceStale(vol, fmt.Errorf("topic %q: repair of segment %d: %w", t.name, base, err))
			return err
		}
		placed := t.placeSegment(vol, old, fixed)
		if !placed {
			// Retention removed the segment while it was copied: so go the
			// copy's files.
			return fixed.Remove()
		}
		old.Retire()
		t.e.opts.Logger.Warn("engine: repaired segment from a mirror", "topic", t.name, "volume", vol.dir, "segment", base, "from", m.vol.dir)
		return nil
	}
	if t.reindex(vol, bad, old) {
		return nil // only its index was damaged (reindex.go)
	}
	return fmt.Errorf("%w: topic %q segment %d: no mirror holds a good copy", ErrCorrupt, t.name, base)
}

// rejoin rebuilds vol's mirror of the topic from the reading mirror and
// adds it to the view. It runs on the writer goroutine: no append happens
// while it copies, so the new mirror is complete when it joins.
func (w *writer) rejoin(vol *Volume) error {
	t := w.t
	if vol.fenced() {
		return fmt.Errorf("%w: %s was fenced again", ErrVolume, vol.dir)
	}
	v := t.view.Load()
	var stale *mirror
	for _, m := range v.mirrors {
		if m.vol == vol {
			stale = m
		}
	}
	if stale != nil {
		if vol.healthy() {
			return nil // a mirror already
		}
		if len(v.mirrors) == 1 {
			// The lone mirror: nothing to rebuild from, and its segments
			// are the topic. It rejoins as it is if its files are still
			// there (the volume came back, as after a remount).
			return t.keepLoneMirror(stale)
		}
		// What the volume held when it was fenced, left in the view of a
		// topic that wrote nothing since: its files may be gone. Rebuild
		// from what the volume holds now instead.
		t.mu.Lock()
		t.view.Store(t.view.Load().without(vol))
		t.mu.Unlock()
		for _, s := range stale.segs {
			s.Retire()
		}
		v = t.view.Load()
	}
	src := v.reader()
	c, err := openFoundMirror(t.e, vol, t.name, false, true, 0)
	if err != nil {
		return err
	}
	layout := append([]*segment.Segment(nil), src.segs...)
	sources := func(s *segment.Segment) []source {
		out := []source{{seg: s, vol: src.vol}}
		for _, o := range v.mirrors {
			if a := o.find(s.Base()); o != src && o.vol != vol && o.vol.healthy() && a != nil && a.SameAs(s) {
				out = append(out, source{seg: a, vol: o.vol})
			}
		}
		return out
	}
	var bad []badSource
	defer func() { w.repairBadSources(bad) }()
	m, ok, err := t.reconcileMirror(c, layout, true, sources, &bad)
	if err != nil || !ok {
		for _, s := range copySegments(c, m) {
			s.Retire()
		}
	}
	if err != nil {
		return err
	}
	if !ok {
		// The topic is damaged on every copy: the volume rejoins without
		// a mirror of it (the next open reconciles it again).
		t.e.opts.Logger.Error("engine: topic damaged; volume rejoins without a mirror of it", "topic", t.name, "volume", vol.dir)
		return nil
	}
	// Retention may have removed segments from the front while the copy
	// ran: the new mirror must hold the same segments as the others.
	t.mu.Lock()
	cur := t.view.Load()
	var gone []*segment.Segment
	if first := cur.reader().segs[0].Base(); m.segs[0].Base() < first {
		i := 0
		for i < len(m.segs)-1 && m.segs[i].Base() < first {
			i++
		}
		gone, m.segs = m.segs[:i], m.segs[i:]
	}
	t.view.Store(cur.with(m, t.e.vols))
	t.mu.Unlock()
	for _, s := range gone {
		if err := s.Remove(); err != nil {
			return err
		}
	}
	return nil
}

// strayTopics lists topic directories on vol that the engine does not know.
func (e *Engine) strayTopics(vol *Volume) []string {
	names, _ := e.fs.List(vol.path(topicsDir))
	var out []string
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, n := range names {
		if _, ok := e.topics[n]; !ok && (ValidTopic(n) == nil || validInternal(n)) {
			out = append(out, n)
		}
	}
	return out
}

// keepLoneMirror lets the only mirror of a topic rejoin unchanged when
// every one of its segment logs is still in its directory.
func (t *Topic) keepLoneMirror(m *mirror) error {
	names, err := t.e.fs.List(m.dir)
	if err != nil {
		return fmt.Errorf("%w: topic %q: no other mirror, and %s: %w", ErrStorage, t.name, m.dir, err)
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	for _, s := range m.segs {
		if !have[segment.LogName(s.Base())] {
			return fmt.Errorf("%w: topic %q: segment %d is gone from %s and there is no other mirror", ErrStorage, t.name, s.Base(), m.dir)
		}
	}
	return nil
}
