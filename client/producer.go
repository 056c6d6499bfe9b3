package client

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// Producer batches the messages sent to one topic: Send copies a message
// into the open batch, and a batch goes to the broker when it reaches
// ProducerMaxBytes or ProducerMaxMessages, when it has waited
// ProducerLinger, or on Flush. Up to ProducerMaxInFlight batches await
// their acks at once; acks are processed in the order the batches were
// sent. Messages buffered or in flight are bounded by ProducerBufferBytes:
// Send blocks while the buffer is full.
//
// Batches are compressed with the Client's codec (WithCompression) or
// ProducerCompression's. A Producer is idempotent by default
// (ProducerIdempotent): it numbers its batches under a producer id from
// the broker and resends a batch that failed retriably (the connection
// dropped, Storage, ShuttingDown, TooBusy, ...) unchanged, with backoff,
// until it is acknowledged or Close's context ends; the broker stores it
// once, so a retry after a lost acknowledgement is safe, and the batches
// in flight behind it are resent in order, so order is kept. Against a
// broker without idempotent producers (InitProducer answered with
// UnknownOpcode) the Producer is not idempotent: a batch that fails once
// it was written to the connection is not resent (the broker may have
// stored it). Either way a batch that could not be written because the
// connection was down waits for the redial. Failures reach
// ProducerOnError, per message, and the next Flush or Close; a batch the
// broker keeps refusing with a storage error (a full disk) is reported
// while it is resent too (ErrRetrying), and a Flush whose context ends
// meanwhile names that error. A batch the
// broker refuses for good (TopicNotFound, ...) may fail the batches sent
// behind it while it was in flight, and the next batch goes out under a
// fresh producer id.
//
// All methods are safe for concurrent use. Two goroutines run per
// Producer: a sender and an acker; Close stops them.
type Producer struct {
	c     *Client
	topic []byte
	cfg   producerConfig
	terr  error // the topic name's defect, if any

	mu       sync.Mutex
	cur      *pbatch       // guarded by mu: the batch being filled, or nil
	queue    []*pbatch     // guarded by mu: sealed, for the sender
	free     []*pbatch     // guarded by mu: batches to reuse
	buffered int           // guarded by mu: message bytes not yet acked
	space    chan struct{} // guarded by mu: closed when buffered drops
	sealed   uint64        // guarded by mu: batches sealed so far
	finished uint64        // guarded by mu: batches acked or failed so far
	progress chan struct{} // guarded by mu: closed when finished moves
	err      error         // guarded by mu: first failure since the last Flush
	retryErr error         // guarded by mu: why a batch is being resent; nil once one is acked
	closed   bool          // guarded by mu

	// Sender and acker, for resends in order: while the acker resends,
	// the sender writes no new batch.
	smu      sync.Mutex
	paused   bool          // guarded by smu: the acker is resending
	resumed  chan struct{} // guarded by smu: closed when paused ends
	inflight int           // guarded by smu: batches written, not yet through the acker

	// Sender only: the producer id (0: none yet, or not idempotent), the
	// next sequence under it, and whether to ask for one at all.
	pid  uint64
	seq  uint32
	idem bool
	// dropPID is the id under which a batch failed for good (set by the
	// acker): the sender asks for a fresh id before its next batch.
	dropPID atomic.Uint64

	codec record.Codec

	wake   chan struct{} // capacity 1: the queue has work
	quit   chan struct{} // closed by Close: the sender drains and exits
	slots  chan struct{} // capacity cfg.inFlight: batches in flight
	acks   chan *pbatch  // sender → acker, in send order
	done   chan struct{} // closed when the acker exits
	timer  *time.Timer   // linger
	ctx    context.Context
	cancel context.CancelFunc
}

// pbatch is one batch of a Producer.
type pbatch struct {
	b     record.Builder
	n     int       // messages
	bytes int       // bytes counted against the buffer
	born  time.Time // first message
	out   []byte    // the finished batch (aliases b), as sent and resent
	pid   uint64    // producer id stamped into out; 0: none
	seq   uint32
	sent  bool // counted in Producer.inflight
	cl    *call
	cn    *conn
	base  uint64
	err   error
}

// NewProducer returns a Producer for topic on c.
func NewProducer(c *Client, topic string, opts ...ProducerOption) *Producer {
	cfg := newProducerConfig(opts)
	cfg.maxBytes = min(cfg.maxBytes, int(c.cfg.maxBody)-(1<<10))
	p := &Producer{c: c, topic: []byte(topic), cfg: cfg, terr: checkTopic(topic),
		space: make(chan struct{}), progress: make(chan struct{}),
		wake: make(chan struct{}, 1), quit: make(chan struct{}),
		slots: make(chan struct{}, cfg.inFlight), acks: make(chan *pbatch, cfg.inFlight),
		done: make(chan struct{})}
	p.codec = c.cfg.codec
	if cfg.codecSet {
		p.codec = cfg.codec
	}
	p.idem = cfg.idempotent
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.timer = time.AfterFunc(time.Hour, p.lingered)
	p.timer.Stop()
	go p.send()
	go p.ack()
	return p
}

// msgCost is what a message counts against the buffer and the batch size.
func msgCost(msg []byte) int { return len(msg) + 5 }

// messageCost is msgCost for a message with key, headers and timestamp.
func messageCost(m *Message) int {
	n := len(m.Value) + len(m.Key) + 25
	for i := range m.Headers {
		n += len(m.Headers[i].Key) + len(m.Headers[i].Value) + 10
	}
	return n
}

// Send adds a copy of msg to the open batch. It blocks while the buffer is
// full, until ctx ends (then it returns ctx.Err()). A nil error means the
// message is buffered, not yet stored: see Flush and ProducerOnError.
func (p *Producer) Send(ctx context.Context, msg []byte) error {
	return p.add(ctx, msg, nil, msgCost(msg))
}

// SendMessage is Send for a message with a key, headers and a timestamp
// (Offset and Time are ignored; a zero Timestamp is stored as none). Its
// batch uses the extended encoding; Send and SendMessage may be mixed.
// ProducerOnError gets the message's Value.
func (p *Producer) SendMessage(ctx context.Context, m Message) error {
	return p.add(ctx, nil, &m, messageCost(&m))
}

// add copies msg, or m when msg is nil, into the open batch.
func (p *Producer) add(ctx context.Context, msg []byte, m *Message, cost int) error {
	if p.terr != nil {
		return p.terr
	}
	if record.HeaderSize+len(p.topic)+16+cost > int(p.c.cfg.maxBody) {
		return fmt.Errorf("%w: message of %d bytes, frame limit %d", ErrMessageTooLarge, cost, p.c.cfg.maxBody)
	}
	p.mu.Lock()
	for !p.closed && p.buffered > 0 && p.buffered+cost > p.cfg.bufferBytes {
		ch := p.space
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if b := p.cur; b != nil && (b.n >= p.cfg.maxMessages || b.b.Size()+cost > p.cfg.maxBytes) {
		p.sealLocked()
	}
	b := p.cur
	if b == nil {
		b = p.newBatchLocked()
		p.cur = b
		if p.cfg.linger > 0 {
			p.timer.Reset(p.cfg.linger)
		}
	}
	if m != nil {
		if err := addMessage(&b.b, m); err != nil {
			return err
		}
	} else if err := b.b.Add(msg); err != nil {
		return fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
	}
	b.n++
	b.bytes += cost
	p.buffered += cost
	switch {
	case b.n >= p.cfg.maxMessages || b.b.Size() >= p.cfg.maxBytes:
		p.sealLocked()
	case p.cfg.linger == 0:
		p.poke() // the sender takes the open batch when it is free
	}
	return nil
}

func (p *Producer) newBatchLocked() *pbatch {
	var b *pbatch
	if n := len(p.free); n > 0 {
		b, p.free = p.free[n-1], p.free[:n-1]
	} else {
		b = new(pbatch)
	}
	b.b.Reset()
	b.n, b.bytes, b.born = 0, 0, time.Now()
	b.out, b.pid, b.seq, b.sent = nil, 0, 0, false
	return b
}

// sealLocked queues the open batch for the sender.
func (p *Producer) sealLocked() {
	if p.cur == nil {
		return
	}
	p.queue = append(p.queue, p.cur)
	p.cur = nil
	p.sealed++
	p.poke()
}

func (p *Producer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// lingered runs on the linger timer: it seals the open batch if it has
// waited long enough, or sets the timer for the rest.
func (p *Producer) lingered() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return
	}
	if left := p.cfg.linger - time.Since(p.cur.born); left > 0 {
		p.timer.Reset(left)
		return
	}
	p.sealLocked()
}

// next takes the next sealed batch; with linger 0 it seals the open one.
func (p *Producer) next() *pbatch {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 && p.cfg.linger == 0 {
		p.sealLocked()
	}
	if len(p.queue) == 0 {
		return nil
	}
	b := p.queue[0]
	p.queue[0] = nil
	p.queue = p.queue[1:]
	return b
}

// send is the sender goroutine: it finishes (compresses) the sealed
// batches in order and writes each after taking an in-flight slot, then
// hands it to the acker.
func (p *Producer) send() {
	defer close(p.acks)
	for {
		for b := p.next(); b != nil; b = p.next() {
			b.out, b.err = b.b.FinishCodec(p.codec) // before the slot: overlaps the batch in flight
			p.slots <- struct{}{}
			p.start(b)
			p.acks <- b
		}
		select {
		case <-p.wake:
		case <-p.quit:
			if p.idle() {
				return
			}
		}
	}
}

// idle seals the open batch and reports whether nothing is left to send.
func (p *Producer) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sealLocked()
	return len(p.queue) == 0
}

// ack is the acker goroutine: it waits for the batches' acks in send
// order, resends what an idempotent Producer may resend, reports them and
// frees their buffer space.
func (p *Producer) ack() {
	defer close(p.done)
	for b := range p.acks {
		p.await(b)
		<-p.slots
		if b.sent {
			p.smu.Lock()
			p.inflight--
			if p.paused && p.inflight == 0 {
				p.paused = false
				close(p.resumed)
			}
			p.smu.Unlock()
		}
		p.report(b)
	}
}

// wait waits for the ack of b's current call.
func (p *Producer) wait(b *pbatch) error {
	if err := b.cn.wait(p.ctx, b.cl); err != nil {
		return err
	}
	var resp netproto.ProduceResponse
	if err := resp.Decode(b.cl.body); err != nil {
		return err
	}
	b.base = resp.BaseOffset
	return nil
}

// report runs the callbacks for b, then counts it finished and frees its
// space and the batch for reuse.
func (p *Producer) report(b *pbatch) {
	if b.cl != nil {
		putCall(b.cl)
		b.cl, b.cn = nil, nil
	}
	if b.err == nil && p.cfg.onAck != nil {
		p.cfg.onAck(b.base, b.n)
	}
	if b.err != nil && b.pid != 0 {
		p.dropPID.Store(b.pid) // the broker's sequence may now lag ours
	}
	if b.err != nil {
		p.reportMessages(b, b.err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retryErr = nil
	if b.err != nil && p.err == nil {
		p.err = fmt.Errorf("client: producer for %q: batch of %d messages: %w", p.topic, b.n, b.err)
	}
	b.err = nil
	p.buffered -= b.bytes
	p.finished++
	close(p.space)
	p.space = make(chan struct{})
	close(p.progress)
	p.progress = make(chan struct{})
	if b.b.Size() <= keepBuilder && len(p.free) < p.cfg.inFlight+2 {
		p.free = append(p.free, b)
	}
}

// reportMessages calls ProducerOnError with err for every message of b.
func (p *Producer) reportMessages(b *pbatch, err error) {
	if p.cfg.onError == nil {
		return
	}
	batch, _ := b.b.Finish()
	if h, herr := record.ParseHeader(batch); herr == nil {
		it := record.Messages(batch, &h)
		for m, ok := it.Next(); ok; m, ok = it.Next() {
			p.cfg.onError(m, err)
		}
	}
}

// Flush sends the open batch and waits until every batch sealed so far is
// acked or failed, or ctx ends. It returns the first failure since the
// last Flush (and forgets it), or ctx.Err(); when ctx ends while a batch
// is being resent, the error wraps ctx.Err() and the broker's error the
// batch is resent after (errors.Is(err, ErrStorage) on a full disk).
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	p.sealLocked()
	target := p.sealed
	for p.finished < target {
		ch := p.progress
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			rerr := p.retryErr
			p.mu.Unlock()
			if rerr != nil {
				return fmt.Errorf("client: producer for %q: %w; still resending after: %w", p.topic, ctx.Err(), rerr)
			}
			return ctx.Err()
		}
		p.mu.Lock()
	}
	err := p.err
	p.err = nil
	p.mu.Unlock()
	return err
}

// Close flushes (see Flush) and stops the Producer; later Sends fail with
// ErrClosed. If ctx ends first, the batches still buffered or in flight
// fail (their callbacks run) and Close returns ctx.Err(). Close does not
// close the Client.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	close(p.space) // wake blocked Sends: they see closed
	p.space = make(chan struct{})
	p.mu.Unlock()
	err := p.Flush(ctx)
	if err != nil && ctx.Err() != nil {
		p.cancel()
	}
	close(p.quit)
	p.poke()
	<-p.done
	p.timer.Stop()
	p.cancel()
	return err
}
