package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/segment"
)

// pressure keeps the descriptors and mappings that segments hold within
// the engine's budget (Options.MaxOpenFiles, MaxMappings). Every unsealed
// segment that opens its files joins a ring; when the counts pass the
// budget, a clock sweep over the ring lets go of the segments not written
// (or loaded) since its last visit — the least recently written active
// segments — until the counts are back under nine tenths of the budget.
// A writer or reader that still hits EMFILE, ENFILE or ENOMEM forces a
// sweep (and closes every idle sealed segment) before it fails.
type pressure struct {
	usage             segment.Usage
	maxFiles, maxMaps int64
	loading           atomic.Int64  // cold segments admitted to open their files, not yet counted in usage
	metaSem           chan struct{} // bounds metadata files written at once (their descriptors are not budgeted)

	sweepMu sync.Mutex // one sweep at a time
	mu      sync.Mutex // guards ring, in and hand; a leaf lock (taken inside a segment's lock by OnLoad)
	ring    []*segment.Segment
	in      map[*segment.Segment]bool
	hand    int
}

// track adds an unsealed segment that opened its files to the ring.
func (p *pressure) track(s *segment.Segment) {
	p.mu.Lock()
	if !p.in[s] {
		if p.in == nil {
			p.in = map[*segment.Segment]bool{}
		}
		p.in[s] = true
		p.ring = append(p.ring, s)
	}
	p.mu.Unlock()
}

func (p *pressure) over(files, maps int64) bool {
	return p.usage.Files.Load() > files || p.usage.Maps.Load() > maps
}

// relieve lets go of files when the engine holds more than its budget, or,
// with force (an open or mmap failed for lack of descriptors or mappings),
// in any case: at least a sixteenth of the tracked active segments and
// every idle sealed one.
func (e *Engine) relieve(force bool) {
	p := &e.press
	if !force && !p.over(p.maxFiles, p.maxMaps) {
		return
	}
	if force {
		p.sweepMu.Lock()
	} else if !p.sweepMu.TryLock() {
		return // a sweep is under way
	}
	defer p.sweepMu.Unlock()
	minRelease := 0
	if force {
		e.open.trim(0)
		p.mu.Lock()
		minRelease = max(1, len(p.ring)/16)
		p.mu.Unlock()
	}
	if n := p.sweep(p.maxFiles*9/10, p.maxMaps*9/10, minRelease); n > 0 {
		e.stats.pressureReleases.Add(int64(n))
	}
}

// admit is called before a cold segment opens its files: it reserves one
// descriptor and two mappings of the budget, sweeping first (and waiting
// for a sweep under way) while the budget is taken, so that however many
// writers and readers open files at once, segments never hold more than
// the budget. It returns the reservation's release, to call once the
// files are open (then counted in usage) or failed to open.
func (e *Engine) admit(s *segment.Segment) func() {
	if s.Loaded() {
		return func() {}
	}
	return e.admitNew()
}

// admitNew is admit for a segment about to be created.
func (e *Engine) admitNew() func() {
	p := &e.press
	done := func() { p.loading.Add(-1) }
	for stalls := 0; ; {
		n := p.loading.Add(1)
		if p.usage.Files.Load()+n <= p.maxFiles && p.usage.Maps.Load()+2*n <= p.maxMaps {
			return done
		}
		p.loading.Add(-1)
		p.sweepMu.Lock()
		progress := true
		if l := p.loading.Load(); p.over(p.maxFiles-l-1, p.maxMaps-2*l-2) {
			n := p.sweep(p.maxFiles*9/10, p.maxMaps*9/10, 0)
			e.stats.pressureReleases.Add(int64(n))
			progress = n > 0
		}
		p.sweepMu.Unlock()
		if !progress {
			// Nothing could be let go now: every open segment is pinned or
			// was just written. Wait for writes to finish, a while; then
			// open anyway (a failure to open is a resource error, relieved
			// and retried).
			if stalls++; stalls > 100 {
				p.loading.Add(1)
				return done
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// sweep visits the ring from the hand, dropping segments that went cold
// or were sealed, giving recently written ones a second chance, and
// releasing the others, until the counts are within files and maps and at
// least minRelease were released, or two full turns found nothing more.
// It returns how many it released.
func (p *pressure) sweep(files, maps int64, minRelease int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	released := 0
	for steps := 2 * len(p.ring); steps > 0 && len(p.ring) > 0; steps-- {
		if released >= minRelease && !p.over(files, maps) {
			break
		}
		if p.hand >= len(p.ring) {
			p.hand = 0
		}
		s := p.ring[p.hand]
		switch {
		case !s.Loaded() || s.Sealed():
			p.drop()
		case s.TakeRecent():
			p.hand++
		case s.ReleaseIdle():
			released++
			p.drop()
		default:
			p.hand++ // pinned (read or written right now): next turn
		}
	}
	return released
}

// drop removes the segment under the hand (mu held).
func (p *pressure) drop() {
	last := len(p.ring) - 1
	delete(p.in, p.ring[p.hand])
	p.ring[p.hand] = p.ring[last]
	p.ring[last] = nil
	p.ring = p.ring[:last]
}

// resourceFail is a read that ran out of descriptors or mappings: Read
// lets files go and tries once more before it reports ErrResource.
type resourceFail struct {
	what string
	err  error
}

func (r *resourceFail) Error() string { return r.what + ": " + r.err.Error() }
func (r *resourceFail) Unwrap() error { return r.err }
