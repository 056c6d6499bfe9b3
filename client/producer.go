package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// MultiProducer batches messages for any number of topics: Send copies a
// message into its topic's open batch, and a batch goes to the broker
// when it reaches ProducerMaxBytes or ProducerMaxMessages, when it has
// waited ProducerLinger, or on Flush. Batches of all topics share one
// connection, one buffer bound (ProducerBufferBytes: Send blocks while the
// messages buffered or in flight, of every topic together, would exceed
// it) and ProducerMaxInFlight slots; they are written in the order they
// were sealed and acked in that order, so the messages of one topic are
// stored in the order they were sent.
//
// Batches are compressed with the Client's codec (WithCompression) or
// ProducerCompression's. A MultiProducer is idempotent by default
// (ProducerIdempotent): it numbers each topic's batches under a producer
// id from the broker (one sequence per topic) and resends a batch that
// failed retriably (the connection dropped, Storage, ShuttingDown,
// TooBusy, ...) unchanged, with backoff, until it is acknowledged or
// Close's context ends; the broker stores it once, so a retry after a lost
// acknowledgement is safe, and the batches in flight behind it are resent
// in order, so order is kept. Against a broker without idempotent
// producers (InitProducer answered with UnknownOpcode) it is not
// idempotent: a batch that fails once it was written to the connection is
// not resent (the broker may have stored it). Either way a batch that
// could not be written because the connection was down waits for the
// redial.
//
// Results: SendFunc takes a callback that gets each message's stored
// offset or its error; ProducerOnAck and ProducerOnError report per batch
// and per message; Flush and Close return a *ProduceError naming the
// topics and counts of the messages that failed since the last Flush. A
// batch the broker refuses for good (TopicNotFound, ...) fails its own
// messages, and may fail the batches of the same topic sent behind it
// while it was in flight; the next batch goes out under a fresh producer
// id. Batches of other topics are not affected.
//
// All methods are safe for concurrent use. Two goroutines run per
// MultiProducer: a sender and an acker; Close stops them.
type MultiProducer struct {
	c   *Client
	cfg producerConfig
	bad error // the options' bad values (ErrBadOption): every Send, Flush and Close fails with it

	mu       sync.Mutex
	open     map[string]*pbatch // guarded by mu: each topic's batch being filled
	born     []bornRef          // guarded by mu: open batches in the order they were opened (linger)
	queue    []*pbatch          // guarded by mu: sealed, for the sender
	free     []*pbatch          // guarded by mu: batches to reuse
	buffered int                // guarded by mu: message bytes not yet acked
	peak     int                // guarded by mu: the most buffered ever was (tests)
	space    chan struct{}      // guarded by mu: closed when buffered drops
	sealed   uint64             // guarded by mu: batches sealed so far
	finished uint64             // guarded by mu: batches acked or failed so far
	progress chan struct{}      // guarded by mu: closed when finished moves
	failures []Failure          // guarded by mu: failures since the last Flush
	dropped  int                // guarded by mu: failures not kept in failures
	retryErr error              // guarded by mu: why a batch is being resent; nil once one is acked
	closed   bool               // guarded by mu
	quiet    bool               // guarded by mu: next is sealing for its caller (no poke)

	// Sender and acker, for resends in order: while the acker resends,
	// the sender writes no new batch.
	smu      sync.Mutex
	paused   bool          // guarded by smu: the acker is resending
	resumed  chan struct{} // guarded by smu: closed when paused ends
	inflight int           // guarded by smu: batches written, not yet through the acker

	// sendMu is the send token: whoever holds it (the sender goroutine,
	// or a Send with linger 0: sendNow) takes sealed batches and writes
	// them. stopped: the sender has exited and closed acks.
	sendMu  sync.Mutex
	stopped bool        // guarded by sendMu
	again   atomic.Bool // sendNow found the token taken: drain once more
	// senderWrites counts the batches the sender goroutine wrote (tests).
	senderWrites atomic.Uint64

	// Send token holder only: the producer id (0: none yet, or not
	// idempotent), the next sequence of each topic under it, and whether
	// to ask for one at all.
	pid  uint64
	seqs map[string]uint32
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

// bornRef is an open batch in MultiProducer.born; gen tells a batch still
// open from one reused since.
type bornRef struct {
	b   *pbatch
	gen uint64
}

// pbatch is one batch of a MultiProducer: messages of one topic.
type pbatch struct {
	topic  string
	topicB []byte // topic's bytes, for the request (kept across reuse)
	b      record.Builder
	n      int       // messages
	bytes  int       // bytes counted against the buffer
	born   time.Time // first message
	gen    uint64    // bumped each time the batch is opened
	out    []byte    // the finished batch (aliases b), as sent and resent
	pid    uint64    // producer id stamped into out; 0: none
	seq    uint32
	sent   bool // counted in MultiProducer.inflight
	queued bool // in MultiProducer.queue (or taken from it)
	cl     *call
	cn     *conn
	base   uint64
	err    error
	proms  []promise // callbacks of the messages sent with SendFunc
	sentAt time.Time // when written (hooks)
}

// promise is a SendFunc callback waiting for message i of its batch.
type promise struct {
	i   int
	ctx context.Context
	fn  func(context.Context, Result)
}

// Result is what became of one message sent with SendFunc: stored at
// Offset of Topic, or not stored because of Err.
type Result struct {
	Topic  string
	Offset uint64 // valid when Err is nil
	Err    error
}

// Failure is one group of messages of a ProduceError: Messages messages
// sent to Topic failed with Err.
type Failure struct {
	Topic    string
	Messages int
	Err      error
}

// ProduceError is what Flush and Close return when messages failed since
// the last Flush: which topics, how many messages, and why. errors.Is
// matches it against each failure's error (ErrTopicNotFound, ...).
type ProduceError struct {
	Failures []Failure
	// More counts the failures left out of Failures (it keeps the first
	// maxFailures).
	More int
}

const maxFailures = 64

func (e *ProduceError) Error() string {
	var sb strings.Builder
	n := 0
	for _, f := range e.Failures {
		n += f.Messages
	}
	fmt.Fprintf(&sb, "client: producer: %d messages failed:", n)
	for i, f := range e.Failures {
		if i > 0 {
			sb.WriteString(";")
		}
		fmt.Fprintf(&sb, " %d to %q: %v", f.Messages, f.Topic, f.Err)
	}
	if e.More > 0 {
		fmt.Fprintf(&sb, "; and %d more failed batches", e.More)
	}
	return sb.String()
}

// Unwrap returns each failure's error.
func (e *ProduceError) Unwrap() []error {
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f.Err
	}
	return errs
}

// NewMultiProducer returns a MultiProducer on c; see the ProducerOptions.
func NewMultiProducer(c *Client, opts ...ProducerOption) *MultiProducer {
	cfg := newProducerConfig(opts)
	cfg.maxBytes = min(cfg.maxBytes, int(c.cfg.maxBody)-(1<<10))
	p := &MultiProducer{c: c, cfg: cfg, open: map[string]*pbatch{}, seqs: map[string]uint32{},
		space: make(chan struct{}), progress: make(chan struct{}),
		wake: make(chan struct{}, 1), quit: make(chan struct{}),
		slots: make(chan struct{}, cfg.inFlight), acks: make(chan *pbatch, cfg.inFlight),
		done: make(chan struct{})}
	p.codec = c.cfg.codec
	if cfg.codecSet {
		p.codec = cfg.codec
	}
	p.idem = cfg.idempotent
	p.bad = errors.Join(cfg.errs...)
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

// Send adds a copy of msg to topic's open batch. It blocks while the
// buffer is full, until ctx ends (then it returns ctx.Err()). A nil error
// means the message is buffered, not yet stored: see SendFunc, Flush and
// ProducerOnError. ctx bounds only the wait for buffer space.
func (p *MultiProducer) Send(ctx context.Context, topic string, msg []byte) error {
	return p.add(ctx, topic, msg, nil, msgCost(msg), nil)
}

// SendMessage is Send for a message with a key, headers and a timestamp,
// to m.Topic (Offset and Time are ignored; a zero Timestamp is stored as
// none). Its batch uses the extended encoding; Send and SendMessage may be
// mixed. ProducerOnError gets the message's Value.
func (p *MultiProducer) SendMessage(ctx context.Context, m Message) error {
	return p.add(ctx, m.Topic, nil, &m, 0, nil)
}

// SendFunc is SendMessage with a callback: fn, when not nil, is called
// exactly once with the message's result — the offset it was stored at,
// or the error that kept it from being stored — and with ctx, the
// context the message was sent with (fn sees the values and trace of
// ctx; that ctx may have ended by then). It runs on the MultiProducer's
// goroutine, after the batch callbacks (ProducerOnAck, ProducerOnError),
// in send order per topic; it must not block for long. A message
// SendFunc refuses at once (a closed producer, ctx ended while the buffer
// was full, a message too large) gets fn called with that error before
// SendFunc returns it.
func (p *MultiProducer) SendFunc(ctx context.Context, m Message, fn func(context.Context, Result)) error {
	err := p.add(ctx, m.Topic, nil, &m, 0, fn)
	if err != nil && fn != nil {
		fn(ctx, Result{Topic: m.Topic, Err: err})
	}
	return err
}

// add copies msg, or m when msg is nil, into topic's open batch.
func (p *MultiProducer) add(ctx context.Context, topic string, msg []byte, m *Message, cost int, fn func(context.Context, Result)) error {
	if p.bad != nil {
		return p.bad
	}
	if err := checkTopic(topic); err != nil {
		return err
	}
	if m == nil && p.c.rewritesMessages() {
		m = &Message{Value: msg}
	}
	if m != nil {
		if err := p.c.beforeProduce(ctx, topic, m); err != nil {
			return err
		}
		cost = messageCost(m)
	}
	if record.HeaderSize+len(topic)+16+cost > int(p.c.cfg.maxBody) {
		return fmt.Errorf("%w: message of %d bytes to %q, frame limit %d", ErrMessageTooLarge, cost, topic, p.c.cfg.maxBody)
	}
	drain, err := p.addLocked(ctx, topic, msg, m, cost, fn)
	if drain {
		p.sendNow()
	}
	return err
}

// addLocked is add after the checks. It reports whether the caller should
// send the open batches itself (linger 0).
func (p *MultiProducer) addLocked(ctx context.Context, topic string, msg []byte, m *Message, cost int, fn func(context.Context, Result)) (drain bool, err error) {
	p.mu.Lock()
	for !p.closed && p.buffered > 0 && p.buffered+cost > p.cfg.bufferBytes {
		ch := p.space
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	if p.closed {
		return false, ErrClosed
	}
	b := p.open[topic]
	if b != nil && (b.n >= p.cfg.maxMessages || b.b.Size()+cost > p.cfg.maxBytes) {
		p.sealLocked(b)
		b = nil
	}
	if b == nil {
		b = p.newBatchLocked(topic)
	}
	if m != nil {
		if err := addMessage(&b.b, m); err != nil {
			return false, err
		}
	} else if err := b.b.Add(msg); err != nil {
		return false, fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
	}
	if fn != nil {
		b.proms = append(b.proms, promise{i: b.n, ctx: ctx, fn: fn})
	}
	b.n++
	b.bytes += cost
	p.buffered += cost
	p.peak = max(p.peak, p.buffered)
	if b.n >= p.cfg.maxMessages || b.b.Size() >= p.cfg.maxBytes {
		p.sealLocked(b)
	}
	// With linger 0 the open batches go as soon as the connection is free:
	// the caller writes them itself when it can do so without waiting
	// (sendNow), else the sender takes them when it is free.
	return p.cfg.linger == 0, nil
}

// newBatchLocked opens a batch for topic.
func (p *MultiProducer) newBatchLocked(topic string) *pbatch {
	var b *pbatch
	if n := len(p.free); n > 0 {
		b, p.free = p.free[n-1], p.free[:n-1]
	} else {
		b = new(pbatch)
	}
	if b.topic != topic {
		b.topic = topic
		b.topicB = append(b.topicB[:0], topic...)
	}
	b.b.Reset()
	b.n, b.bytes, b.born = 0, 0, time.Now()
	b.gen++
	b.out, b.pid, b.seq, b.sent, b.queued = nil, 0, 0, false, false
	p.open[topic] = b
	if p.cfg.linger > 0 {
		if len(p.born) == 0 {
			p.timer.Reset(p.cfg.linger)
		}
		p.born = append(p.born, bornRef{b, b.gen})
	}
	return b
}

// queueLocked hands b to the sender, once. b stays open for more
// messages until the sender takes it (or it fills, or Flush): a batch
// waiting for a free in-flight slot grows instead of leaving a trail of
// small batches behind it.
func (p *MultiProducer) queueLocked(b *pbatch) {
	if b.queued {
		return
	}
	b.queued = true
	p.queue = append(p.queue, b)
	p.sealed++
	if !p.quiet {
		p.poke()
	}
}

// sealLocked closes b for messages and queues it for the sender.
func (p *MultiProducer) sealLocked(b *pbatch) {
	if p.open[b.topic] == b {
		delete(p.open, b.topic)
	}
	b.gen++ // its bornRef is stale now
	p.queueLocked(b)
}

// sealAllLocked seals every open batch, oldest first.
func (p *MultiProducer) sealAllLocked() {
	if len(p.open) == 0 {
		return
	}
	for _, r := range p.born {
		if r.b.gen == r.gen {
			p.sealLocked(r.b)
		}
	}
	clear(p.born)
	p.born = p.born[:0]
	for _, b := range p.open { // queued already by linger, or linger 0
		p.sealLocked(b)
	}
}

func (p *MultiProducer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// lingered runs on the linger timer: it queues the open batches that have
// waited long enough and sets the timer for the oldest of the rest.
func (p *MultiProducer) lingered() {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for ; i < len(p.born); i++ {
		r := p.born[i]
		if r.b.gen != r.gen {
			continue // sealed already
		}
		if left := p.cfg.linger - time.Since(r.b.born); left > 0 {
			p.timer.Reset(left)
			break
		}
		p.queueLocked(r.b)
	}
	n := copy(p.born, p.born[i:])
	clear(p.born[n:])
	p.born = p.born[:n]
}

// next takes the next sealed batch; with linger 0 it seals the open ones.
func (p *MultiProducer) next() *pbatch {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 && p.cfg.linger == 0 {
		p.quiet = true // the caller takes them: no wake of the sender
		p.sealAllLocked()
		p.quiet = false
	}
	if len(p.queue) == 0 {
		return nil
	}
	b := p.queue[0]
	p.queue[0] = nil
	p.queue = p.queue[1:]
	if p.open[b.topic] == b { // queued by linger, open until now
		delete(p.open, b.topic)
		b.gen++
	}
	return b
}

// send is the sender goroutine: it finishes (compresses) the sealed
// batches in order and writes each after taking an in-flight slot, then
// hands it to the acker. It writes holding sendMu, the send token: with
// linger 0 a caller of Send, or the acker, may write instead (sendNow),
// never two at once, so batches are written in the order they were sealed.
func (p *MultiProducer) send() {
	quit := false
	for {
		p.sendMu.Lock()
		if quit && p.idle() {
			p.stopped = true
			close(p.acks)
			p.sendMu.Unlock()
			return
		}
		p.drain(p.cfg.linger > 0 || quit, false)
		p.sendMu.Unlock()
		if p.again.Load() {
			p.sendNow() // a caller found the token taken meanwhile
		}
		select {
		case <-p.wake:
		case <-p.quit:
			quit = true
		}
	}
}

// drain writes the sealed batches (with linger 0, the open ones too); the
// send token is held. With wait, it waits for an in-flight slot; without,
// it stops when every slot is taken (linger 0: the acker calls sendNow
// when it frees one, and the open batch grows meanwhile). A caller (not
// the sender) stops too when writing would wait for a producer id or a
// resend, and reports whether it left batches for the sender.
func (p *MultiProducer) drain(wait, caller bool) (left bool) {
	for {
		if caller && !p.ready() {
			return true
		}
		if wait {
			b := p.next()
			if b == nil {
				return false
			}
			b.out, b.err = b.b.FinishCodec(p.codec) // before the slot: overlaps the batch in flight
			p.slots <- struct{}{}
			p.start(b)
			if !caller {
				p.senderWrites.Add(1)
			}
			p.acks <- b
			continue
		}
		select {
		case p.slots <- struct{}{}:
		default:
			return false
		}
		b := p.next()
		if b == nil {
			<-p.slots
			return false
		}
		b.out, b.err = b.b.FinishCodec(p.codec)
		p.start(b)
		if !caller {
			p.senderWrites.Add(1)
		}
		p.acks <- b // room: every batch in acks holds a slot
	}
}

// sendNow is linger 0's way out for the open batches, run by Send and by
// the acker when it frees an in-flight slot: when the send token is free,
// a slot is free and writing needs no wait for a producer id or a resend,
// the caller finishes and writes the batches itself instead of waking the
// sender (one hand-off between goroutines less per batch). When every slot
// is taken it leaves them to grow until the acker frees one; when the
// token is taken, whoever holds it drains again (below); when writing
// would wait, it wakes the sender.
//
// again makes it wait-free: a caller that finds the token taken leaves
// again set, and whoever releases the token looks at again and drains once
// more, so no batch is left behind and nobody is woken for it.
func (p *MultiProducer) sendNow() {
	p.again.Store(true)
	for p.again.Load() && p.sendMu.TryLock() {
		p.again.Store(false)
		left := !p.stopped && p.drain(false, true)
		p.sendMu.Unlock()
		if left {
			p.poke()
			return
		}
	}
}

// ready reports whether start can write without waiting: one broker (not
// a seed list) and a live connection (start would redial a dead one; it
// can still die between this look and the write, and then this Send
// waits for the redial), not
// paused for a resend, and a producer id in hand when idempotent. Send
// token held.
func (p *MultiProducer) ready() bool {
	if p.idem && (p.pid == 0 || p.dropPID.Load() == p.pid) {
		return false
	}
	if p.c.route != nil || !p.c.live() {
		return false // a seed list: finding a topic's leader may take a request
	}
	p.smu.Lock()
	defer p.smu.Unlock()
	return !p.paused
}

// idle seals the open batches and reports whether nothing is left to send.
func (p *MultiProducer) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sealAllLocked()
	return len(p.queue) == 0
}

// ack is the acker goroutine: it waits for the batches' acks in send
// order, resends what an idempotent MultiProducer may resend, reports them
// and frees their buffer space.
func (p *MultiProducer) ack() {
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
		if p.cfg.linger == 0 {
			// The next batch goes out at once, from here: no wake of the
			// sender for it.
			p.sendNow()
		}
		p.report(b)
	}
}

// wait waits for the ack of b's current call.
func (p *MultiProducer) wait(b *pbatch) error {
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
func (p *MultiProducer) report(b *pbatch) {
	if b.cl != nil {
		putCall(b.cl)
		b.cl, b.cn = nil, nil
	}
	p.c.cfg.hooks.batchProduced(b.topic, b.base, b.n, len(b.out), time.Since(b.sentAt), b.err)
	if b.err == nil && p.cfg.onAck != nil {
		p.cfg.onAck(b.base, b.n)
	}
	if b.err == nil && p.cfg.onTopicAck != nil {
		p.cfg.onTopicAck(b.topic, b.base, b.n)
	}
	if b.err != nil && b.pid != 0 {
		p.dropPID.Store(b.pid) // the broker's sequence may now lag ours
	}
	if b.err != nil {
		p.reportMessages(b, b.err)
	}
	for i := range b.proms {
		pr := &b.proms[i]
		r := Result{Topic: b.topic, Err: b.err}
		if b.err == nil {
			r.Offset = b.base + uint64(pr.i)
		}
		pr.fn(pr.ctx, r)
		*pr = promise{}
	}
	b.proms = b.proms[:0]
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retryErr = nil
	if b.err != nil {
		p.failLocked(b.topic, b.n, b.err)
	}
	b.err = nil
	p.buffered -= b.bytes
	p.finished++
	close(p.space)
	p.space = make(chan struct{})
	close(p.progress)
	p.progress = make(chan struct{})
	if b.b.Size() <= keepBuilder && len(p.free) < p.cfg.inFlight+2+len(p.open) && (len(p.free)+1)*b.b.Size() <= p.cfg.bufferBytes {
		p.free = append(p.free, b)
	}
}

// failLocked records n messages of topic that failed with err, for Flush.
func (p *MultiProducer) failLocked(topic string, n int, err error) {
	if k := len(p.failures); k > 0 && p.failures[k-1].Topic == topic && p.failures[k-1].Err.Error() == err.Error() {
		p.failures[k-1].Messages += n
		return
	}
	if len(p.failures) >= maxFailures {
		p.dropped++
		return
	}
	p.failures = append(p.failures, Failure{Topic: topic, Messages: n, Err: err})
}

// reportMessages calls ProducerOnError with err for every message of b.
func (p *MultiProducer) reportMessages(b *pbatch, err error) {
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

// Flush sends the open batches and waits until every batch sealed so far
// is acked or failed, or ctx ends. It returns a *ProduceError for the
// messages that failed since the last Flush (and forgets them), or
// ctx.Err(); when ctx ends while a batch is being resent, the error wraps
// ctx.Err() and the broker's error the batch is resent after
// (errors.Is(err, ErrStorage) on a full disk).
func (p *MultiProducer) Flush(ctx context.Context) error {
	if p.bad != nil {
		return p.bad
	}
	p.mu.Lock()
	p.sealAllLocked()
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
				return fmt.Errorf("client: producer: %w; still resending after: %w", ctx.Err(), rerr)
			}
			return ctx.Err()
		}
		p.mu.Lock()
	}
	var err error
	if len(p.failures) > 0 {
		err = &ProduceError{Failures: p.failures, More: p.dropped}
		p.failures, p.dropped = nil, 0
	}
	p.mu.Unlock()
	return err
}

// Close flushes (see Flush) and stops the MultiProducer; later Sends fail
// with ErrClosed. If ctx ends first, the batches still buffered or in
// flight fail (their callbacks run) and Close returns ctx.Err(). Close
// does not close the Client.
func (p *MultiProducer) Close(ctx context.Context) error {
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

// Producer is a MultiProducer bound to one topic: the same batching,
// buffer bound, idempotence and results (see MultiProducer), with Send
// taking just the message.
type Producer struct {
	mp    *MultiProducer
	topic string
}

// NewProducer returns a Producer for topic on c.
func NewProducer(c *Client, topic string, opts ...ProducerOption) *Producer {
	return &Producer{mp: NewMultiProducer(c, opts...), topic: topic}
}

// Send adds a copy of msg to the open batch (MultiProducer.Send).
func (p *Producer) Send(ctx context.Context, msg []byte) error {
	return p.mp.Send(ctx, p.topic, msg)
}

// SendMessage is Send for a message with a key, headers and a timestamp
// (MultiProducer.SendMessage); m.Topic is ignored.
func (p *Producer) SendMessage(ctx context.Context, m Message) error {
	m.Topic = p.topic
	return p.mp.SendMessage(ctx, m)
}

// SendFunc is SendMessage with a per-message callback
// (MultiProducer.SendFunc); m.Topic is ignored.
func (p *Producer) SendFunc(ctx context.Context, m Message, fn func(context.Context, Result)) error {
	m.Topic = p.topic
	return p.mp.SendFunc(ctx, m, fn)
}

// Flush is MultiProducer.Flush.
func (p *Producer) Flush(ctx context.Context) error { return p.mp.Flush(ctx) }

// Close is MultiProducer.Close.
func (p *Producer) Close(ctx context.Context) error { return p.mp.Close(ctx) }
