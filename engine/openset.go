package engine

import (
	"sync"

	"github.com/haraqa/haraqa/segment"
)

// openSet tracks the segments that opened their files (segment.Options.
// OnLoad), oldest first, so that the engine can keep at most
// MaxOpenSegments sealed ones open: every sealed segment a reader mapped
// would otherwise keep two descriptors and two mappings for good.
type openSet struct {
	mu   sync.Mutex // a leaf lock: taken inside a segment's lock by OnLoad
	segs []*segment.Segment
}

func (o *openSet) add(s *segment.Segment) {
	o.mu.Lock()
	o.segs = append(o.segs, s)
	o.mu.Unlock()
}

// trim closes the oldest idle sealed segments until at most max remain
// tracked. Pinned ones are kept (tracked again); unsealed ones are left to
// their writer's idle release. It holds no segment lock while it works.
func (o *openSet) trim(max int) {
	o.mu.Lock()
	if len(o.segs) <= max {
		o.mu.Unlock()
		return
	}
	n := len(o.segs) - max
	old := append([]*segment.Segment(nil), o.segs[:n]...)
	o.segs = append(o.segs[:0], o.segs[n:]...)
	o.mu.Unlock()
	var keep []*segment.Segment
	for _, s := range old {
		if !s.Sealed() {
			continue
		}
		if !s.ReleaseIdle() && s.Acquire() {
			// Still mapped and pinned by a reader: look again later.
			s.Release()
			keep = append(keep, s)
		}
	}
	if len(keep) > 0 {
		o.mu.Lock()
		o.segs = append(o.segs, keep...)
		o.mu.Unlock()
	}
}
