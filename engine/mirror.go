package engine

import (
	"github.com/haraqa/haraqa/segment"
)

// mirror is a topic's copy on one volume.
type mirror struct {
	vol  *Volume
	dir  string
	segs []*segment.Segment // oldest first, never empty
}

func (m *mirror) active() *segment.Segment { return m.segs[len(m.segs)-1] }

// find returns the mirror's segment with base b, or nil.
func (m *mirror) find(b uint64) *segment.Segment {
	lo, hi := 0, len(m.segs)
	for lo < hi {
		mid := (lo + hi) / 2
		if m.segs[mid].Base() < b {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(m.segs) && m.segs[lo].Base() == b {
		return m.segs[lo]
	}
	return nil
}

// view is what readers and the writer see of a topic: its copies on the
// healthy volumes, in volume order. Invariant: every mirror holds the same
// segment bases. Reads come from the last mirror whose volume is healthy.
// A view is never changed in place: changes build a new one (Topic.mu).
type view struct {
	mirrors []*mirror
}

// reader returns the mirror reads come from: the last healthy one, or the
// last one at all when none is healthy.
func (v *view) reader() *mirror {
	for i := len(v.mirrors) - 1; i >= 0; i-- {
		if v.mirrors[i].vol.healthy() {
			return v.mirrors[i]
		}
	}
	return v.mirrors[len(v.mirrors)-1]
}

// clone returns a copy of v whose mirrors (and their segment lists) may be
// changed.
func (v *view) clone() *view {
	n := &view{mirrors: make([]*mirror, len(v.mirrors))}
	for i, m := range v.mirrors {
		c := *m
		c.segs = append([]*segment.Segment(nil), m.segs...)
		n.mirrors[i] = &c
	}
	return n
}

// without returns v without the mirrors on volume vol.
func (v *view) without(vol *Volume) *view {
	n := &view{}
	for _, m := range v.mirrors {
		if m.vol != vol {
			n.mirrors = append(n.mirrors, m)
		}
	}
	return n
}

// with returns v plus m, keeping volume order.
func (v *view) with(m *mirror, order []*Volume) *view {
	n := &view{}
	for _, vol := range order {
		if vol == m.vol {
			n.mirrors = append(n.mirrors, m)
			continue
		}
		for _, o := range v.mirrors {
			if o.vol == vol {
				n.mirrors = append(n.mirrors, o)
			}
		}
	}
	return n
}
