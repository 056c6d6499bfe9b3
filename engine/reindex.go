package engine

import (
	"errors"

	"github.com/haraqa/haraqa/segment"
)

// reindex repairs a sealed segment whose log still matches its seal (so
// its index is what failed the check) by rebuilding the index from the
// log, in place, and puts the reopened segment in the view (writer
// goroutine, from repairSegment, when no mirror holds a good copy). false: the log itself is damaged, or the
// rebuild failed; a mirror or a peer must repair it.
func (t *Topic) reindex(vol *Volume, bad *mirror, old *segment.Segment) bool {
	if !old.Sealed() || !old.Acquire() {
		return false
	}
	defer old.Release() // its mapping serves readers until the swap
	fixed, err := segment.Reindex(t.e.fs, bad.dir, old.Base(), t.e.opts.segmentOptions())
	if err != nil {
		if !errors.Is(err, segment.ErrCorrupt) {
			t.e.opts.Logger.Warn("engine: rebuilding a damaged segment's index failed", "topic", t.name, "volume", vol.dir, "segment", old.Base(), "err", err)
		}
		return false
	}
	if err := fixed.Verify(); err != nil {
		fixed.Retire()
		t.e.opts.Logger.Warn("engine: a segment whose log matches its seal still fails its check after its index was rebuilt", "topic", t.name, "volume", vol.dir, "segment", old.Base(), "err", err)
		return false
	}
	placed := t.placeSegment(vol, old, fixed)
	if !placed {
		fixed.Remove() // removed by retention meanwhile: so goes the new index
		return true
	}
	old.Retire()
	t.e.opts.Logger.Warn("engine: rebuilt a damaged index from its segment's log", "topic", t.name, "volume", vol.dir, "segment", old.Base())
	return true
}

// placeSegment puts fixed in place of old in vol's mirror of the topic's
// view (a repaired copy or a rebuilt index); false when old is no longer
// there (retention removed it meanwhile).
func (t *Topic) placeSegment(vol *Volume, old, fixed *segment.Segment) bool {
	placed := false
	t.mu.Lock()
	nv := t.view.Load().clone()
	for _, nm := range nv.mirrors {
		if nm.vol == vol {
			for i, s := range nm.segs {
				if s == old {
					nm.segs[i], placed = fixed, true
				}
			}
		}
	}
	t.view.Store(nv)
	t.mu.Unlock()
	return placed
}
