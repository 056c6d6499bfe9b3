package engine

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/haraqa/haraqa/segment"
)

// Bounds of the open-segment set's upkeep.
const (
	// trimCredit is how many tracked segments each segment that opens its
	// files pays to have looked at (and closed, or kept for later) once the
	// set is over its cap: the upkeep is paid by opens, never by reads that
	// open nothing.
	trimCredit = 4
	// maxTrimWork bounds the entries one trim call looks at, so that no
	// read pays for a backlog (after Open, every segment opened its files
	// once during recovery).
	maxTrimWork = 256
)

// openSet tracks the segments that opened their files (segment.Options.
// OnLoad), least recently opened first, so that the engine can keep about
// MaxOpenSegments of them open: every sealed segment a reader mapped would
// otherwise keep two descriptors and two mappings for good.
//
// Costs: add is O(1); trim is O(1) when the set is within its cap (one
// atomic load) and otherwise looks at no more than maxTrimWork entries.
// Entries of segments that went cold by other means (the writer's idle
// release, Close, Remove) are dropped when trim reaches them, without
// using credit; the others it looks at use one credit each. So the work of
// trimming is O(1) amortised per segment opened.
type openSet struct {
	n      atomic.Int64 // entries tracked (len(idx)); read without mu
	credit atomic.Int64 // looks at entries that trim may still spend
	mu     sync.Mutex   // a leaf lock: taken inside a segment's lock by OnLoad
	lru    list.List    // of *openEntry, least recently opened first
	idx    map[*segment.Segment]*list.Element
}

type openEntry struct {
	s   *segment.Segment
	gen uint64 // bumped by every add: trim drops an entry only if unchanged
}

// add records that s opened its files. It runs under s's lock: it must not
// call into any segment.
func (o *openSet) add(s *segment.Segment) {
	o.mu.Lock()
	if o.idx == nil {
		o.idx = map[*segment.Segment]*list.Element{}
	}
	if el, ok := o.idx[s]; ok {
		el.Value.(*openEntry).gen++
		o.lru.MoveToBack(el)
	} else {
		o.idx[s] = o.lru.PushBack(&openEntry{s: s})
		o.n.Add(1)
	}
	o.mu.Unlock()
	o.credit.Add(trimCredit)
}

// trim closes the least recently opened idle sealed segments while more
// than max are tracked, as far as its credit goes. Pinned and unsealed
// segments are kept and go to the back (an unsealed one is its writer's to
// release). It holds no segment lock while it works.
func (o *openSet) trim(max int) {
	for work := 0; work < maxTrimWork; {
		over := int(o.n.Load()) - max
		if over <= 0 || o.credit.Load() <= 0 {
			return
		}
		var batch [trimBatch]openEntry
		k := o.front(batch[:min(over, trimBatch)])
		if k == 0 {
			return
		}
		work += k
		var drop [trimBatch]bool
		for i, e := range batch[:k] {
			if !e.s.Loaded() {
				drop[i] = true // cold already: dropping it is free
				continue
			}
			o.credit.Add(-1)
			drop[i] = e.s.Sealed() && e.s.ReleaseIdle()
		}
		o.mu.Lock()
		for i, e := range batch[:k] {
			el, ok := o.idx[e.s]
			switch {
			case !ok || el.Value.(*openEntry).gen != e.gen:
				// Opened its files again meanwhile: add moved it back.
			case drop[i]:
				o.lru.Remove(el)
				delete(o.idx, e.s)
				o.n.Add(-1)
			default:
				o.lru.MoveToBack(el)
			}
		}
		o.mu.Unlock()
	}
}

// trimBatch is how many entries trim takes at once.
const trimBatch = 32

// front copies up to len(dst) entries from the front of the list.
func (o *openSet) front(dst []openEntry) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := 0
	for el := o.lru.Front(); el != nil && k < len(dst); el = el.Next() {
		dst[k] = *el.Value.(*openEntry)
		k++
	}
	return k
}
