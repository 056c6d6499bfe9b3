package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
)

// Group-commit bounds: one vectored write takes at most this many batches
// (IOV_MAX) or bytes.
const (
	maxGroupBatches = 1024
	maxGroupBytes   = 64 << 20
)

type reqOp uint8

const (
	opAppend reqOp = iota
	opRoll         // seal the active segment if it holds anything
)

// appendReq is one queued request to a topic's writer. Pooled: a request
// and its done channel are reused, so an append allocates nothing.
type appendReq struct {
	op    reqOp
	batch []byte
	base  uint64
	err   error
	done  chan struct{}
}

var reqPool = sync.Pool{New: func() any { return &appendReq{done: make(chan struct{}, 1)} }}

// Append appends one record batch to topic and returns the offset assigned
// to its first message. The batch is verified (record.Verify) and stamped
// in place with its base offset and append time: the caller must not touch
// it until Append returns. What the return means is set by the fsync
// policy (see FsyncPolicy). On error nothing of the batch is visible.
//
// ctx bounds the wait for room in the topic's queue; once queued, Append
// waits for the writer's answer.
func (e *Engine) Append(ctx context.Context, topic string, batch []byte) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	t, err := e.topic(topic)
	if err != nil {
		return 0, err
	}
	if len(batch) > e.opts.MaxBatchBytes {
		return 0, fmt.Errorf("%w: %d bytes, limit %d: %w", ErrInvalidBatch, len(batch), e.opts.MaxBatchBytes, record.ErrTooLarge)
	}
	if _, err := record.Verify(batch); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidBatch, err)
	}
	if err := t.readOnlyErr(); err != nil {
		return 0, err
	}
	return t.submit(ctx, opAppend, batch)
}

func (t *Topic) submit(ctx context.Context, op reqOp, batch []byte) (uint64, error) {
	t.w.sendMu.RLock()
	if t.w.stopped {
		t.w.sendMu.RUnlock()
		return 0, t.goneErr()
	}
	r := reqPool.Get().(*appendReq)
	r.op, r.batch, r.base, r.err = op, batch, 0, nil
	select {
	case t.reqs <- r:
		t.w.sendMu.RUnlock()
	case <-ctx.Done():
		t.w.sendMu.RUnlock()
		reqPool.Put(r)
		return 0, ctx.Err()
	case <-t.quit:
		t.w.sendMu.RUnlock()
		reqPool.Put(r)
		return 0, t.goneErr()
	}
	<-r.done
	base, err := r.base, r.err
	r.batch, r.err = nil, nil
	reqPool.Put(r)
	return base, err
}

func (t *Topic) goneErr() error {
	if t.deleted.Load() {
		return fmt.Errorf("%w: %q", ErrTopicNotFound, t.name)
	}
	return ErrClosed
}

// writer is a topic's single writer: it drains the queue, writes each group
// of batches with one vectored write, syncs per policy, publishes the new
// end, then answers every request of the group.
type writer struct {
	t       *Topic
	opts    *Options
	sendMu  sync.RWMutex // submitters hold it shared while sending
	stopped bool         // guarded by sendMu
	group   []*appendReq
	bufs    [][]byte
	next    uint64 // offset the next batch gets; == t.end between groups
	last    int64  // last append time handed out (append times never go back)
	dirty   bool   // written but not synced (FsyncInterval)
	timer   *time.Timer
}

func (w *writer) init(t *Topic) {
	w.t, w.opts = t, &t.e.opts
	w.next = t.end.Load()
	segs := t.segments()
	w.last = segs[len(segs)-1].LastTime()
}

func (w *writer) run() {
	t := w.t
	defer close(t.done)
	for {
		var syncC <-chan time.Time
		if w.dirty && w.timer != nil {
			syncC = w.timer.C
		}
		select {
		case r := <-t.reqs:
			w.group = append(w.group[:0], r)
			w.collect()
			w.process()
		case <-syncC:
			w.syncActive()
		case <-t.quit:
			w.shutdown()
			return
		}
	}
}

// collect takes whatever else is queued, up to the group bounds.
func (w *writer) collect() {
	n := len(w.group[0].batch)
	for len(w.group) < maxGroupBatches && n < maxGroupBytes {
		select {
		case r := <-w.t.reqs:
			w.group = append(w.group, r)
			n += len(r.batch)
		default:
			return
		}
	}
}

// shutdown refuses new requests, then finishes the queued ones: written as
// usual on Close, failed when the topic was deleted.
func (w *writer) shutdown() {
	w.sendMu.Lock()
	w.stopped = true
	w.sendMu.Unlock()
	for {
		select {
		case r := <-w.t.reqs:
			w.group = append(w.group[:0], r)
			w.collect()
			if w.t.deleted.Load() {
				w.fail(w.group, w.t.goneErr())
			} else {
				w.process()
			}
		default:
			if w.dirty {
				w.syncActive()
			}
			if w.timer != nil {
				w.timer.Stop()
			}
			return
		}
	}
}

func (w *writer) fail(rs []*appendReq, err error) {
	for _, r := range rs {
		r.err = err
		r.done <- struct{}{}
	}
}

func (w *writer) active() *segment.Segment {
	segs := w.t.segments()
	return segs[len(segs)-1]
}

// process writes the group: runs of requests that fit the active segment
// go out in one write and one sync; the segment rolls between runs.
func (w *writer) process() {
	now := max(w.opts.Now().UnixNano(), w.last)
	g := w.group
	for len(g) > 0 {
		if err := w.t.readOnlyErr(); err != nil {
			w.fail(g, err)
			return
		}
		seg := w.active()
		if g[0].op == opRoll {
			err := error(nil)
			if seg.Entries() > 0 || seg.Sealed() {
				err = w.roll(seg)
			}
			g[0].base, g[0].err = w.next, err
			g[0].done <- struct{}{}
			g = g[1:]
			continue
		}
		if seg.Sealed() || w.shouldRoll(seg, len(g[0].batch), now) {
			if err := w.roll(seg); err != nil {
				w.fail(g, err)
				return
			}
			continue
		}
		n := w.chunk(seg, g)
		if err := w.write(seg, g[:n], now); err != nil {
			w.fail(g, err)
			return
		}
		for _, r := range g[:n] {
			r.done <- struct{}{}
		}
		g = g[n:]
	}
}

// chunk returns how many leading append requests of g fit seg together.
func (w *writer) chunk(seg *segment.Segment, g []*appendReq) int {
	size := 0
	for i, r := range g {
		if r.op != opAppend || (i > 0 && !seg.Fits(size+len(r.batch), i+1)) {
			return i
		}
		size += len(r.batch)
	}
	return len(g)
}

func (w *writer) shouldRoll(seg *segment.Segment, n int, now int64) bool {
	if seg.Entries() == 0 {
		return false
	}
	if !seg.Fits(n, 1) {
		return true
	}
	return w.opts.SegmentAge > 0 && now-seg.FirstTime() >= int64(w.opts.SegmentAge)
}

// write stamps, writes, syncs (per policy), commits and publishes rs.
func (w *writer) write(seg *segment.Segment, rs []*appendReq, now int64) error {
	w.bufs = w.bufs[:0]
	next := w.next
	for _, r := range rs {
		record.Stamp(r.batch, next, now)
		r.base = next
		next += uint64(record.CountOf(r.batch))
		w.bufs = append(w.bufs, r.batch)
	}
	err := seg.Write(w.bufs)
	if err == nil && w.opts.Fsync == FsyncAlways {
		err = seg.Sync()
	}
	clear(w.bufs)
	if err != nil {
		if rerr := seg.Rollback(); rerr != nil {
			w.t.setReadOnly(fmt.Errorf("%w: %q: a failed write could not be rolled back: %w", ErrReadOnly, w.t.name, rerr))
			w.t.e.opts.Logger.Error("engine: topic now read-only", "topic", w.t.name, "err", rerr)
		}
		return fmt.Errorf("%w: topic %q: %w", ErrStorage, w.t.name, err)
	}
	seg.Commit()
	w.next, w.last = next, now
	w.t.publish(next)
	if w.opts.Fsync == FsyncInterval && !w.dirty {
		w.dirty = true
		if w.timer == nil {
			w.timer = time.NewTimer(w.opts.FsyncInterval)
		} else {
			w.timer.Reset(w.opts.FsyncInterval)
		}
	}
	return nil
}

// syncActive syncs the active segment for FsyncInterval. A failed sync
// may have lost acknowledged bytes (the kernel can drop dirty pages after a
// failed fsync), so the topic becomes read-only and says so loudly.
func (w *writer) syncActive() {
	w.dirty = false
	if err := w.active().Sync(); err != nil {
		w.t.setReadOnly(fmt.Errorf("%w: %q: interval fsync failed: %w", ErrReadOnly, w.t.name, err))
		w.t.e.opts.Logger.Error("engine: interval fsync failed; acknowledged appends may be lost; topic read-only", "topic", w.t.name, "err", err)
	}
}

// roll seals seg (if not yet sealed) and starts the next segment. A failure
// is retriable: the next append tries again.
func (w *writer) roll(seg *segment.Segment) error {
	if !seg.Sealed() {
		if err := seg.Seal(); err != nil {
			return fmt.Errorf("%w: topic %q: %w", ErrStorage, w.t.name, err)
		}
		w.dirty = false
	}
	ns, err := segment.Create(w.t.e.fs, w.t.dir, w.next, w.opts.segmentOptions())
	if err != nil {
		return fmt.Errorf("%w: topic %q: %w", ErrStorage, w.t.name, err)
	}
	w.t.mu.Lock()
	old := w.t.segments()
	segs := make([]*segment.Segment, len(old), len(old)+1)
	copy(segs, old)
	w.t.setSegments(append(segs, ns))
	w.t.mu.Unlock()
	return nil
}
