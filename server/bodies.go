package server

import (
	"context"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Memory for request bodies, across connections.
//
// Every body read counts against the server's budget (MaxInFlightBytes)
// until it is released: a small body from its header on, a large one
// budgetStep at a time as its bytes arrive. A request whose body does not
// fit waits a little for room, then is answered TooBusy and the rest of
// its body skipped, so that no number of connections can make the broker
// hold more than the budget in bodies.
//
// A body up to bodyStep lives on the Go heap; a connection keeps such
// buffers for reuse up to connKeepBytes, so an idle connection holds at
// most that and its read buffer. A larger body lives in an anonymous
// memory mapping: only the pages its bytes reach cost memory (a peer that
// declares a large body and sends little costs little), and when it is
// released it goes back to the server's pool, up to bigPoolBytes of
// mappings, or is unmapped, which returns its memory to the system at
// once, without waiting for the garbage collector. The pool empties once
// no large body arrived for poolIdle.

// connKeepBytes bounds the small body buffers a connection keeps.
const connKeepBytes = 64 << 10

// bigPoolBytes bounds the mapped body buffers the server keeps for reuse.
const bigPoolBytes = 64 << 20

// budget is the server's count of body bytes held, against a maximum.
type budget struct {
	max     int64
	used    atomic.Int64
	waiting atomic.Int32 // acquires waiting for room: release wakes them

	mu    sync.Mutex
	freed chan struct{} // guarded by mu: closed when bytes are released to waiters
}

func newBudget(max int64) *budget { return &budget{max: max, freed: make(chan struct{})} }

func (b *budget) tryAcquire(n int64) bool {
	if b.used.Add(n) <= b.max {
		return true
	}
	b.used.Add(-n)
	return false
}

// acquire takes n bytes, waiting up to wait (or until ctx ends) for room.
func (b *budget) acquire(ctx context.Context, n int64, wait time.Duration) bool {
	if n == 0 || b.tryAcquire(n) {
		return true
	}
	b.waiting.Add(1)
	defer b.waiting.Add(-1)
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		b.mu.Lock()
		ch := b.freed
		b.mu.Unlock()
		// Tried after ch is taken: a release between the failed try and
		// here closes ch, so no wake-up is missed.
		if b.tryAcquire(n) {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// release gives n bytes back and wakes the waiters.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.used.Add(-n)
	if b.waiting.Load() > 0 {
		b.mu.Lock()
		close(b.freed)
		b.freed = make(chan struct{})
		b.mu.Unlock()
	}
}

// poolIdle is how long the pool keeps its buffers once no large body
// arrives: an idle broker gives their memory back.
const poolIdle = 5 * time.Second

// bodyPool keeps mapped body buffers for reuse, by size class: class k
// holds mappings of 1<<k bytes. It holds at most max bytes of them, and
// none once no buffer was taken for poolIdle.
type bodyPool struct {
	mu       sync.Mutex
	free     [64][][]byte // guarded by mu
	bytes    int          // guarded by mu
	lastGet  time.Time    // guarded by mu
	trimming bool         // guarded by mu: a trim is scheduled
	max      int
}

// mapped reports whether b is a mapped body buffer: heap buffers are at
// most bodyStep long, mappings are larger.
func mapped(b []byte) bool { return cap(b) > bodyStep }

// get returns a mapped buffer of at least n bytes (n > bodyStep), length 0.
func (p *bodyPool) get(n int) ([]byte, error) {
	k := bits.Len(uint(n - 1))
	p.mu.Lock()
	p.lastGet = time.Now()
	if l := p.free[k]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		p.free[k] = l[:len(l)-1]
		p.bytes -= cap(b)
		p.mu.Unlock()
		return b[:0], nil
	}
	p.mu.Unlock()
	b, err := mapBody(1 << k)
	if err != nil {
		return nil, err
	}
	return b[:0], nil
}

// put keeps b for reuse or unmaps it. Nothing may use b afterwards.
func (p *bodyPool) put(b []byte) {
	b = b[:cap(b)]
	k := bits.Len(uint(len(b) - 1))
	p.mu.Lock()
	if p.bytes+len(b) <= p.max {
		p.free[k] = append(p.free[k], b)
		p.bytes += len(b)
		if !p.trimming {
			p.trimming = true
			time.AfterFunc(poolIdle, p.trim)
		}
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	unmapBody(b)
}

// trim empties the pool once no buffer was taken for poolIdle, or looks
// again when that will be so.
func (p *bodyPool) trim() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if left := poolIdle - time.Since(p.lastGet); left > 0 && p.bytes > 0 {
		time.AfterFunc(left, p.trim)
		return
	}
	p.trimming = false
	p.drainLocked()
}

// drain unmaps every kept buffer (the server has no connections left).
func (p *bodyPool) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drainLocked()
}

func (p *bodyPool) drainLocked() {
	for k, l := range p.free {
		for _, b := range l {
			unmapBody(b)
		}
		p.free[k] = nil
	}
	p.bytes = 0
}
