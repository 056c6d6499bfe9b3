package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	opRepair       // replace vol's copy of segment base from a good mirror
	opRejoin       // rebuild vol's mirror and add it to the view
	opSync         // sync the active segments (Engine.Sync)
	opSkip         // drop the whole log and start it at base (Engine.SkipTo)
)

// writerReq is one queued request to a topic's writer: an append (opAppend)
// or a command the writer runs between appends (opRoll, opRepair,
// opRejoin), so that every change of a topic's files happens on its one
// writer goroutine. Append requests are pooled: a request and its done channel are reused, so an append
// allocates nothing.
type writerReq struct {
	op    reqOp
	batch []byte
	vol   *Volume // opRepair, opRejoin
	base  uint64  // result of an append; the segment of an opRepair
	pid   uint64  // producer id of an idempotent batch (0: none)
	seq   uint32  // its sequence
	count uint32  // its message count
	at    int64   // append time to stamp (EnqueueAt); 0: the writer's clock
	err   error
	done  chan struct{}
}

var reqPool = sync.Pool{New: func() any { return &writerReq{done: make(chan struct{}, 1)} }}

// Pending is an append queued by Enqueue; Wait returns its result.
type Pending struct {
	r  *writerReq
	fn func() (uint64, error) // NewPending
}

// NewPending returns a Pending whose Wait calls wait: for a log service
// layered on the engine (package cluster) whose appends finish elsewhere.
func NewPending(wait func() (uint64, error)) Pending { return Pending{fn: wait} }

// Wait blocks until the writer answered the append and returns the offset
// of its first message. Call it exactly once.
func (p Pending) Wait() (uint64, error) {
	if p.fn != nil {
		return p.fn()
	}
	<-p.r.done
	base, err := p.r.base, p.r.err
	p.r.batch, p.r.err = nil, nil
	reqPool.Put(p.r)
	return base, err
}

// Append appends one record batch to topic and returns the offset assigned
// to its first message. The batch is verified (record.Verify) and stamped
// in place with its base offset and append time: the caller must not touch
// it until Append returns. What the return means is set by the fsync
// policy (see FsyncPolicy). On error nothing of the batch is visible.
//
// ctx bounds the wait for room in the topic's queue; once queued, Append
// waits for the writer's answer.
func (e *Engine) Append(ctx context.Context, topic string, batch []byte) (uint64, error) {
	p, err := e.Enqueue(ctx, topic, batch)
	if err != nil {
		return 0, err
	}
	return p.Wait()
}

// Enqueue is the first half of Append: it verifies the batch and queues it
// for the topic's writer, blocking (honouring ctx) while the queue is full.
// Batches enqueued one after another get increasing offsets, in that order:
// a server uses it to keep a connection's pipelined produces in order while
// their acknowledgements are awaited concurrently. The batch must not be
// touched until Wait returns.
func (e *Engine) Enqueue(ctx context.Context, topic string, batch []byte) (Pending, error) {
	return e.enqueue(ctx, topic, batch, 0, false)
}

// EnqueueAt is Enqueue with the append time given: the batch is stamped
// with appendTime (Unix nanoseconds) instead of the writer's clock, and
// segment-age rolls are judged by it. Package cluster applies a replicated
// log with it so that every replica stores the same bytes. A run of one
// write holds batches of one append time only. 0 means the writer's clock.
// A batch with a producer id and an append time is not deduplicated (the
// replicated log's apply decided already), only remembered.
func (e *Engine) EnqueueAt(ctx context.Context, topic string, batch []byte, appendTime int64) (Pending, error) {
	return e.enqueue(ctx, topic, batch, appendTime, false)
}

// EnqueueAtDirect is EnqueueAt with EnqueueDirect's shortcut: when the
// topic's writer is idle, with nothing queued, the caller writes the batch
// itself and the Pending is already answered (package cluster's apply of
// an entry holding one batch: no hand-off to the writer and back).
func (e *Engine) EnqueueAtDirect(ctx context.Context, topic string, batch []byte, appendTime int64) (Pending, error) {
	return e.enqueue(ctx, topic, batch, appendTime, true)
}

func (e *Engine) enqueue(ctx context.Context, topic string, batch []byte, at int64, direct bool) (Pending, error) {
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	t, err := e.topic(topic)
	if err != nil {
		return Pending{}, err
	}
	return e.enqueueTopicAt(ctx, t, batch, at, direct)
}

// appendTopic appends to t (internal topics too) and waits.
func (e *Engine) appendTopic(ctx context.Context, t *Topic, batch []byte) (uint64, error) {
	p, err := e.enqueueTopic(ctx, t, batch, false)
	if err != nil {
		return 0, err
	}
	return p.Wait()
}

// enqueueTopic is Enqueue (direct: EnqueueDirect) on a topic found
// (internal topics too).
func (e *Engine) enqueueTopic(ctx context.Context, t *Topic, batch []byte, direct bool) (Pending, error) {
	return e.enqueueTopicAt(ctx, t, batch, 0, direct)
}

// enqueueTopicAt is enqueueTopic with EnqueueAt's append time (0: the
// writer's clock).
func (e *Engine) enqueueTopicAt(ctx context.Context, t *Topic, batch []byte, at int64, direct bool) (Pending, error) {
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	if len(batch) > e.opts.MaxBatchBytes {
		return Pending{}, fmt.Errorf("%w: %d bytes, limit %d: %w", ErrInvalidBatch, len(batch), e.opts.MaxBatchBytes, record.ErrTooLarge)
	}
	h, err := record.Verify(batch)
	if err != nil {
		// %v, not %w: a client's bad batch is not stored data gone bad.
		return Pending{}, fmt.Errorf("%w: %v", ErrInvalidBatch, err)
	}
	// A compressed batch is small on the wire but may claim up to
	// record.MaxBatchSize raw bytes (and as many messages: the count is at
	// most the raw length): bound both by the same limit, so a consumer
	// can decode it and a few batches cannot span a segment's offsets.
	if int64(h.RawLen) > int64(e.opts.MaxBatchBytes) {
		return Pending{}, fmt.Errorf("%w: %d raw (uncompressed) bytes, limit %d: %w", ErrInvalidBatch, h.RawLen, e.opts.MaxBatchBytes, record.ErrTooLarge)
	}
	if err := t.readOnlyErr(); err != nil {
		return Pending{}, err
	}
	r := reqPool.Get().(*writerReq)
	r.op, r.batch, r.vol, r.base, r.err = opAppend, batch, nil, 0, nil
	r.pid, r.seq, r.count, r.at = h.ProducerID, h.Sequence, h.Count, at
	if direct && t.writeDirect(r) {
		return Pending{r: r}, nil
	}
	if err := t.send(ctx, r); err != nil {
		reqPool.Put(r)
		return Pending{}, err
	}
	return Pending{r: r}, nil
}

// EnqueueDirect is Enqueue for a caller that would otherwise only wait for
// the answer (a connection with nothing else to read): when the topic's
// writer is idle, with nothing queued, the caller becomes the writer for
// its own batch (leader-based group commit): it writes it, syncs per the
// fsync policy, publishes, and returns a Pending that is already answered
// (Ready). This
// saves the two goroutine hand-offs of the queue (to the writer and back)
// on an idle topic. When the writer is busy (or anything is queued) it
// queues like Enqueue, and the writer's next group takes the batch with the
// others, so that group commit still gathers concurrent appends.
func (e *Engine) EnqueueDirect(ctx context.Context, topic string, batch []byte) (Pending, error) {
	return e.enqueue(ctx, topic, batch, 0, true)
}

// Ready reports whether the append has been answered, so that Wait would
// not block.
func (p Pending) Ready() bool { return p.r != nil && len(p.r.done) > 0 }

// writeDirect has the caller write r as the leader of a group if the
// writer is idle, and reports whether it did (r is then answered).
func (t *Topic) writeDirect(r *writerReq) bool {
	w := &t.w
	if w.queued.Load() != 0 || !w.mu.TryLock() {
		return false
	}
	defer w.mu.Unlock()
	// Anything queued goes first: the writer goroutine, once it has taken
	// a request off the queue, holds queued above zero until it has
	// written it, so an idle writer and an empty queue mean no earlier
	// request is waiting to be stored.
	if w.queued.Load() != 0 {
		return false
	}
	w.sendMu.RLock()
	defer w.sendMu.RUnlock()
	if w.stopped {
		return false // send reports why
	}
	select {
	case <-t.quit:
		return false
	default:
	}
	// Only r: taking queued requests here could write a later one before
	// an earlier one that the writer goroutine has already taken off the
	// queue and is waiting for mu to write.
	w.group = append(w.group[:0], r)
	w.process()
	w.active()
	return true
}

// send queues r for the writer.
func (t *Topic) send(ctx context.Context, r *writerReq) error {
	t.w.sendMu.RLock()
	defer t.w.sendMu.RUnlock()
	if t.w.stopped {
		return t.goneErr()
	}
	t.w.queued.Add(1)
	select {
	case t.reqs <- r:
		return nil
	case <-ctx.Done():
		t.w.queued.Add(-1)
		return ctx.Err()
	case <-t.quit:
		t.w.queued.Add(-1)
		return t.goneErr()
	}
}

// trySend queues r for the writer if the queue has room.
func (t *Topic) trySend(r *writerReq) bool {
	t.w.queued.Add(1)
	select {
	case t.reqs <- r:
		return true
	default:
		t.w.queued.Add(-1)
		return false
	}
}

// submitCtl runs a control request on the writer and waits for it.
func (t *Topic) submitCtl(ctx context.Context, r *writerReq) (uint64, error) {
	r.done = make(chan struct{}, 1)
	if err := t.send(ctx, r); err != nil {
		return 0, err
	}
	<-r.done
	return r.base, r.err
}

func (t *Topic) goneErr() error {
	if t.deleted.Load() {
		return fmt.Errorf("%w: %q", ErrTopicNotFound, t.name)
	}
	return ErrClosed
}

// writer is a topic's single writer: it drains the queue, writes each group
// of batches with one vectored write per mirror, syncs per policy,
// publishes the new end, then answers every request of the group.
//
// The writer goroutine is not the only one that writes: a caller of
// EnqueueDirect that finds the writer idle writes its own group
// (writeDirect). mu is the right to write: whoever holds it owns the
// fields below; queued counts requests sent to the queue and not yet
// written, so that a direct write never overtakes an earlier request.
type writer struct {
	t        *Topic
	opts     *Options
	mu       sync.Mutex   // held while writing a group or running a timer's work
	queued   atomic.Int64 // requests on the queue or taken off it and not yet done
	sendMu   sync.RWMutex // submitters hold it shared while sending
	stopped  bool         // guarded by sendMu
	group    []*writerReq
	bufs     [][]byte
	failed   []error            // per mirror, for one step
	created  []*segment.Segment // per mirror, for stepCreate
	syncWG   sync.WaitGroup
	next     uint64      // offset the next batch gets; == t.end between groups
	last     int64       // last append time handed out (append times never go back)
	dirty    bool        // written but not synced (FsyncInterval)
	timer    *time.Timer // interval sync; created stopped by init, never replaced
	idle     *time.Timer // idle release; created by init, never replaced
	lastUse  time.Time   // when the last group was written
	prods    producers   // idempotent producers' recent sequences
	relieved bool        // each is retrying a step after a forced relieve
}

func (w *writer) init(t *Topic) {
	w.t, w.opts = t, &t.e.opts
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	w.idle = time.NewTimer(w.opts.IdleRelease)
	w.lastUse = time.Now()
	w.next = t.end.Load()
	w.last = t.view.Load().reader().active().LastTime()
	w.prods.recover(t)
}

func (w *writer) run() {
	t := w.t
	defer close(t.done)
	defer w.idle.Stop()
	for {
		select {
		case r := <-t.reqs:
			w.mu.Lock()
			w.group = append(w.group[:0], r)
			w.collect()
			n := len(w.group)
			w.process()
			w.queued.Add(-int64(n))
			w.active()
			w.mu.Unlock()
		case <-w.idle.C:
			w.mu.Lock()
			if rest := w.opts.IdleRelease - time.Since(w.lastUse); rest > 0 {
				w.idle.Reset(rest) // a direct write used the topic meanwhile
			} else {
				w.releaseIdle()
			}
			w.mu.Unlock()
		case <-w.timer.C:
			w.mu.Lock()
			if w.dirty {
				w.syncActive()
			}
			w.mu.Unlock()
		case <-t.quit:
			w.mu.Lock()
			w.shutdown()
			w.mu.Unlock()
			return
		}
	}
}

// active notes a written group: the idle release waits a full quiet spell
// from now.
func (w *writer) active() {
	w.lastUse = time.Now()
	w.idle.Reset(w.opts.IdleRelease)
}

// releaseIdle closes the active segments' files after a quiet spell, so
// that idle topics hold no descriptors; a pending interval sync goes first.
func (w *writer) releaseIdle() {
	if w.dirty {
		w.syncActive()
	}
	w.saveProducers(w.mirrors())
	for _, m := range w.mirrors() {
		m.active().ReleaseIdle()
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
			n := len(w.group)
			if w.t.deleted.Load() {
				w.fail(w.group, w.t.goneErr())
			} else {
				w.process()
			}
			w.queued.Add(-int64(n))
		default:
			if w.dirty {
				w.syncActive()
			}
			if !w.t.deleted.Load() {
				w.saveProducers(w.mirrors())
			}
			w.timer.Stop()
			return
		}
	}
}

func (w *writer) fail(rs []*writerReq, err error) {
	for _, r := range rs {
		r.err = err
		r.done <- struct{}{}
	}
}

// mirrors returns the view's mirrors on healthy volumes, dropping the
// others from the view first (their volume was fenced by some topic's
// writer or by the health check).
func (w *writer) mirrors() []*mirror {
	t := w.t
	v := t.view.Load()
	for _, m := range v.mirrors {
		if m.vol.fenced() && len(v.mirrors) > 1 {
			t.mu.Lock()
			t.view.Store(t.view.Load().without(m.vol))
			t.mu.Unlock()
			for _, s := range m.segs {
				s.Retire()
			}
			return w.mirrors()
		}
	}
	if len(v.mirrors) == 1 && v.mirrors[0].vol.fenced() {
		return nil
	}
	return v.mirrors
}

// process writes the group: runs of requests that fit the active segment
// go out in one write and one sync per mirror; segments roll between runs.
func (w *writer) process() {
	now := max(w.opts.Now().UnixNano(), w.last)
	g := w.dedupe(w.group)
	for len(g) > 0 {
		if g[0].op != opAppend {
			w.control(g[0])
			g = g[1:]
			continue
		}
		if err := w.t.readOnlyErr(); err != nil {
			w.fail(g, err)
			return
		}
		ms := w.mirrors()
		if len(ms) < w.opts.MinVolumes {
			w.fail(g, fmt.Errorf("%w: topic %q: %d healthy volumes, %d needed", ErrStorage, w.t.name, len(ms), w.opts.MinVolumes))
			return
		}
		seg := ms[0].active()
		now := now
		if g[0].at != 0 {
			now = g[0].at // EnqueueAt: the replicated log's time
		}
		if seg.Sealed() || w.shouldRoll(seg, len(g[0].batch), g[0].count, now) {
			if err := w.roll(); err != nil {
				w.fail(g, err)
				return
			}
			continue
		}
		n := w.chunk(seg, g)
		if err := w.write(g[:n], now); err != nil {
			w.fail(g, err)
			return
		}
		w.prods.commit(g[:n])
		for _, r := range g[:n] {
			r.done <- struct{}{}
		}
		g = g[n:]
	}
}

// dedupe answers the group's duplicate and out-of-order idempotent
// batches at once and returns the requests left to write, in order.
func (w *writer) dedupe(g []*writerReq) []*writerReq {
	clear(w.prods.pending)
	out := g[:0]
	for _, r := range g {
		// An EnqueueAt batch (at set) is a replicated log's, which
		// deduplicated it already (package cluster): stored as it is.
		if r.op == opAppend && r.pid != 0 && r.at == 0 && w.prods.dedupe(r) {
			if r.err == nil {
				w.t.e.stats.duplicates.Add(1)
			}
			r.done <- struct{}{}
			continue
		}
		out = append(out, r)
	}
	return out
}

// control runs a control request.
func (w *writer) control(r *writerReq) {
	switch r.op {
	case opRoll:
		r.base = w.next
		if ms := w.mirrors(); len(ms) > 0 {
			if a := ms[0].active(); a.Entries() > 0 || a.Sealed() {
				r.err = w.roll()
			}
		}
	case opRepair:
		r.err = w.repairSegment(r.vol, r.base)
	case opRejoin:
		r.err = w.rejoin(r.vol)
	case opSync:
		r.err = w.syncNow()
		r.base = w.next
	case opSkip:
		r.err = w.skipTo(r.base)
		r.base = w.next
	}
	r.done <- struct{}{}
}

// chunk returns how many leading append requests of g fit seg together.
func (w *writer) chunk(seg *segment.Segment, g []*writerReq) int {
	size, msgs := 0, uint64(0)
	for i, r := range g {
		if r.op != opAppend || (i > 0 && (r.at != g[0].at || !seg.Fits(size+len(r.batch), i+1) || !seg.SpanFits(msgs+uint64(r.count)))) {
			return i
		}
		size += len(r.batch)
		msgs += uint64(r.count)
	}
	return len(g)
}

func (w *writer) shouldRoll(seg *segment.Segment, n int, count uint32, now int64) bool {
	if seg.Entries() == 0 {
		return false
	}
	if !seg.Fits(n, 1) || !seg.SpanFits(uint64(count)) {
		return true
	}
	return w.opts.SegmentAge > 0 && now-seg.FirstTime() >= int64(w.opts.SegmentAge)
}

// write stamps rs, writes them to every mirror, syncs (per policy),
// commits and publishes. A mirror whose write or sync fails is fenced if
// enough volumes remain; otherwise every mirror rolls back and the
// requests fail with ErrStorage.
func (w *writer) write(rs []*writerReq, now int64) error {
	w.bufs = w.bufs[:0]
	next, size := w.next, 0
	for _, r := range rs {
		record.Stamp(r.batch, next, now)
		r.base = next
		next += uint64(record.CountOf(r.batch))
		size += len(r.batch)
		w.bufs = append(w.bufs, r.batch)
	}
	defer clear(w.bufs)
	if err := w.each(w.mirrors(), stepWrite); err != nil {
		return err
	}
	for _, m := range w.mirrors() {
		m.active().Commit()
	}
	w.t.e.relieve(false) // within the descriptor and mapping budget
	w.t.traffic.appendedMsgs.Add(int64(next - w.next))
	w.t.traffic.appendedBytes.Add(int64(size))
	if o := w.opts.Observer; o != nil {
		o.ObserveGroup(len(rs), size)
	}
	w.next, w.last = next, now
	if w.opts.Fsync == FsyncAlways {
		w.t.synced.Store(next)
	}
	w.t.publish(next)
	if w.opts.Fsync == FsyncInterval && !w.dirty {
		w.dirty = true
		w.timer.Reset(w.opts.FsyncInterval)
	}
	return nil
}

// A step is what each does on one mirror.
type step uint8

const (
	stepWrite  step = iota // write w.bufs, and sync under FsyncAlways
	stepSeal               // seal the active segment
	stepCreate             // create the next segment at w.next
	stepDrop               // remove every segment of the mirror (skipTo)
)

func (w *writer) do(st step, i int, m *mirror) error {
	s := m.active()
	switch st {
	case stepWrite:
		done := w.t.e.admit(s)
		err := s.Write(w.bufs)
		done()
		if err == nil && w.opts.Fsync == FsyncAlways {
			err = w.sync(s)
		}
		return err
	case stepSeal:
		if !s.Sealed() {
			return s.Seal()
		}
		return nil
	case stepDrop:
		for _, s := range m.segs {
			if err := s.Remove(); err != nil {
				return err
			}
		}
		return nil
	default:
		var err error
		done := w.t.e.admitNew()
		w.created[i], err = segment.Create(w.t.e.fs, m.dir, w.next, w.opts.segmentOptions())
		done()
		return err
	}
}

// each does st on every mirror (concurrently when there are several, so
// that syncs on different disks overlap) and applies the fencing rule to
// the failures: with enough healthy volumes left, the failed ones are
// fenced and nil is returned; otherwise every written mirror is rolled
// back and an ErrStorage is returned.
func (w *writer) each(ms []*mirror, st step) error {
	w.failed = w.failed[:0]
	for range ms {
		w.failed = append(w.failed, nil)
	}
	if len(ms) == 1 {
		w.failed[0] = w.do(st, 0, ms[0])
	} else {
		w.syncWG.Add(len(ms))
		for i, m := range ms {
			go func() {
				defer w.syncWG.Done()
				w.failed[i] = w.do(st, i, m)
			}()
		}
		w.syncWG.Wait()
	}
	var firstErr error
	nfailed := 0
	for _, err := range w.failed {
		if err != nil {
			nfailed++
			firstErr = cmpErr(firstErr, err)
		}
	}
	if nfailed == 0 {
		w.t.e.resourceRecovered()
		return nil
	}
	for _, err := range w.failed {
		if isResource(err) {
			// Out of descriptors or mappings: no volume's fault, so none
			// is fenced. Every mirror rolls back; the engine lets go of the
			// least recently written topics' files and the step is tried
			// once more; if it fails again the request may retry later.
			w.rollbackAll(ms)
			if st == stepCreate {
				for i, s := range w.created {
					if s != nil {
						s.Remove()
						w.created[i] = nil
					}
				}
			}
			if !w.relieved {
				w.relieved = true
				w.t.e.relieve(true)
				err := w.each(ms, st)
				w.relieved = false
				return err
			}
			return w.t.e.resourceError(fmt.Sprintf("topic %q", w.t.name), err)
		}
	}
	if len(ms)-nfailed >= w.opts.MinVolumes {
		for i, m := range ms {
			if w.failed[i] != nil {
				m.active().Undo() // out of service now: reconciled before it serves again
				w.t.e.fenceVolume(m.vol, fmt.Errorf("topic %q: %w", w.t.name, w.failed[i]))
			}
		}
		return nil
	}
	for _, err := range w.failed {
		if errors.Is(err, segment.ErrSyncLost) {
			// The same rule as a failed interval sync: acknowledged bytes
			// may be gone and retrying the sync (say at the next seal)
			// could lie. The segment refuses every later sync and seal.
			return w.syncLost(err)
		}
	}
	w.rollbackAll(ms)
	return fmt.Errorf("%w: topic %q: %w", ErrStorage, w.t.name, firstErr)
}

// sync syncs s, timing it for the Observer.
func (w *writer) sync(s *segment.Segment) error {
	o := w.opts.Observer
	if o == nil {
		return s.Sync()
	}
	start := time.Now()
	err := s.Sync()
	o.ObserveSync(time.Since(start))
	return err
}

// rollbackAll rolls every mirror back to its last commit; one that cannot
// be rolled back makes the topic read-only.
func (w *writer) rollbackAll(ms []*mirror) {
	for _, m := range ms {
		if rerr := m.active().Rollback(); rerr != nil {
			w.t.setReadOnly(fmt.Errorf("%w: %q: a failed write could not be rolled back: %w", ErrReadOnly, w.t.name, rerr))
			w.t.e.opts.Logger.Error("engine: topic now read-only", "topic", w.t.name, "volume", m.vol.dir, "err", rerr)
		}
	}
}

// syncLost makes the topic read-only after a failed sync of acknowledged,
// not yet synced bytes on the last volumes it may use, says so loudly and
// returns the error. Every mirror's uncommitted bytes are cut first.
func (w *writer) syncLost(err error) error {
	for _, m := range w.mirrors() {
		m.active().Rollback()
	}
	rerr := fmt.Errorf("%w: %q: fsync failed; acknowledged appends may be lost: %w", ErrReadOnly, w.t.name, err)
	w.t.setReadOnly(rerr)
	w.t.e.opts.Logger.Error("engine: fsync failed; acknowledged appends may be lost; topic read-only", "topic", w.t.name, "err", err)
	return rerr
}

// syncActive syncs the active segments for FsyncInterval. A failed sync
// may have lost acknowledged bytes (the kernel can drop dirty pages after a
// failed fsync): that volume is fenced, or, if it was the last one the
// topic may use, the topic becomes read-only and says so loudly.
func (w *writer) syncActive() {
	w.dirty = false
	ms := w.mirrors()
	w.failed = append(w.failed[:0], make([]error, len(ms))...)
	for i, m := range ms {
		w.failed[i] = w.sync(m.active())
	}
	ok := 0
	for _, err := range w.failed {
		if err == nil {
			ok++
		}
	}
	if ok == len(ms) {
		w.t.synced.Store(w.next)
	}
	for i, m := range ms {
		err := w.failed[i]
		if err == nil {
			continue
		}
		if ok >= w.opts.MinVolumes {
			w.t.e.fenceVolume(m.vol, fmt.Errorf("topic %q: interval fsync: %w", w.t.name, err))
			continue
		}
		w.t.setReadOnly(fmt.Errorf("%w: %q: interval fsync failed: %w", ErrReadOnly, w.t.name, err))
		w.t.e.opts.Logger.Error("engine: interval fsync failed; acknowledged appends may be lost; topic read-only", "topic", w.t.name, "err", err)
	}
}

// roll seals every mirror's active segment (if not yet sealed) and starts
// the next segment on each. A failure is retriable: the next append tries
// again (a volume that fails while others suffice is fenced instead).
func (w *writer) roll() error {
	if err := w.each(w.mirrors(), stepSeal); err != nil {
		return err
	}
	w.dirty = false
	w.t.synced.Store(w.next) // sealing synced every mirror's log
	ms := w.mirrors()
	w.created = make([]*segment.Segment, len(ms))
	created := w.created
	if err := w.each(ms, stepCreate); err != nil {
		for _, s := range created {
			if s != nil {
				s.Remove()
			}
		}
		return err
	}
	w.t.mu.Lock()
	nv := w.t.view.Load().clone()
	for _, nm := range nv.mirrors {
		for i, m := range ms {
			if m.vol == nm.vol && created[i] != nil {
				nm.segs = append(nm.segs, created[i])
			}
		}
	}
	// A mirror fenced while creating keeps no new segment; drop it now.
	var gone []*mirror
	for i, m := range ms {
		if created[i] == nil {
			nv = nv.without(m.vol)
			gone = append(gone, m)
		}
	}
	w.t.view.Store(nv)
	w.t.mu.Unlock()
	for _, m := range gone {
		for _, s := range m.segs {
			s.Retire()
		}
	}
	// The sealed segments stay readable; they reopen when read.
	for i, m := range ms {
		if created[i] != nil {
			m.active().ReleaseIdle()
		}
	}
	w.saveProducers(w.mirrors())
	return nil
}
