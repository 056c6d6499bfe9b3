package client

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/haraqa/haraqa/internal/retry"
	"github.com/haraqa/haraqa/netproto"
)

// Consumer follows a topic from an offset: Messages yields every message
// in offset order and, at the end of the topic, long-polls the broker for
// more, so an idle Consumer costs no CPU. Behind the end it reads ahead:
// while it yields the messages of one read, the next is already on its
// way. At the end it keeps a ConsumeNext behind its long poll (a request
// the broker answers from where the poll's answer ended; not on the first
// read of a Messages loop): the broker holds the next poll while an answer
// travels and is read, so a message that comes meanwhile goes out at once. It holds up to three read buffers. A
// Consumer belongs to one goroutine.
type Consumer struct {
	c       *Client
	topic   string
	next    uint64
	cfg     consumeConfig
	pending bool // ConsumeFrom's time is not resolved to an offset yet
	skipped uint64
	buf     ConsumeBuffer
	// Read-ahead: while the messages of one response are iterated, the
	// next request is in flight into another buffer, when the response
	// ended below the topic's end (more is there to read). At the end:
	// the next long poll (ahead, tail) and a ConsumeNext behind it
	// (chain), each into a buffer of its own.
	alt, spare ConsumeBuffer
	cur        *ConsumeBuffer // the buffer of the messages being iterated
	ahead      consumeReq     // ahead.cl != nil: the next request, in flight
	// chain.cl != nil: a ConsumeNext in flight behind the request being
	// received; its offset is known once that request's answer is in.
	chain consumeReq
	// atEnd: the last answer reached the topic's end.
	atEnd bool
	// arrivedFn is arrived's callback, made once; ctx is the context of
	// the Messages loop it sends the read-ahead under.
	arrivedFn func(m *Messages, next, brokerNext uint64)
	ctx       context.Context
}

// Skipped returns how many offsets the Consumer jumped over under
// ConsumeReset (messages no longer stored when it got there).
func (cs *Consumer) Skipped() uint64 { return cs.skipped }

// defaultFollowWait is the long-poll wait of a Consumer without
// ConsumeWait.
const defaultFollowWait = 10 * time.Second

// NewConsumer returns a Consumer of topic that starts at offset, or with
// ConsumeFrom at a time. Options: ConsumeWait (the long poll, default
// 10s), ConsumeMaxBytes and ConsumeLimit per read, ConsumeFrom.
func NewConsumer(c *Client, topic string, offset uint64, opts ...ConsumeOption) *Consumer {
	cs := &Consumer{c: c, topic: topic, next: offset, cfg: applyConsumeOptions(opts)}
	cs.pending = !cs.cfg.from.IsZero()
	if cs.cfg.wait <= 0 {
		cs.cfg.wait = defaultFollowWait
	}
	return cs
}

// Offset returns the offset of the next message the Consumer yields: one
// past the last message yielded. With ConsumeFrom it is the offset given to
// NewConsumer until Messages has resolved the time.
func (cs *Consumer) Offset() uint64 { return cs.next }

// Messages iterates over the topic's messages from the Consumer's offset
// until ctx ends (then the loop just stops) or the loop breaks; a later
// Messages call goes on from where the last stopped.
//
// A message's Value aliases the Consumer's buffer: it is valid until the
// next iteration. Copy it to keep it.
//
// A failed read is yielded as an error with a zero Message. A retriable
// one (IsRetriable: the connection dropped, the broker is busy) is
// retried with backoff if the loop goes on; any other error (the topic was
// deleted, the offset fell below the start by retention, corruption) ends
// the iteration after it is yielded — except, with ConsumeSkipCorrupt,
// damage the broker names: the Consumer goes on after it; and, with
// ConsumeReset(ResetEarliest or ResetLatest), a position out of the
// topic's range: the Consumer goes on at the start or end, yielding no
// error (Skipped counts the offsets jumped over).
//
// With WithTransformer, a message whose value cannot be opened is yielded
// with its error (a *TransformError) and a nil Value, and the iteration
// goes on.
//
// Each batch's checksums are verified before any of its messages is
// yielded; a batch that fails is yielded as ErrCorrupt after the messages
// of the batches before it in the same read.
func (cs *Consumer) Messages(ctx context.Context) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		defer func() {
			cs.dropAhead()
			cs.ctx = nil
		}()
		// The first read of a loop gets no ConsumeNext behind it, only
		// reads after an answer of this loop do: a loop that ends before
		// any answer (its context ends mid-poll) leaves one request waiting
		// at the broker, holding an in-flight slot, not two.
		cs.atEnd = false
		failures := 0
		for ctx.Err() == nil {
			m, walk, err := cs.read(ctx)
			if err == nil && m != nil {
				var more bool
				if walk {
					more, err = cs.c.walk(cs.cur, &cs.next, yield)
				} else {
					more = cs.yieldIndexed(m, yield)
				}
				if !more {
					return
				}
			}
			if err == nil {
				failures = 0
				continue
			}
			if to, ok := cs.cfg.resetTo(err, cs.topic, cs.next); ok {
				if to > cs.next {
					cs.skipped += to - cs.next
				}
				cs.next, failures = to, 0
				continue
			}
			if ctx.Err() != nil || !yield(Message{}, err) {
				return
			}
			if end, ok := cs.skippable(err); ok {
				cs.next, failures = end, 0 // what was skipped: the error yielded
				continue
			}
			if !IsRetriable(err) {
				return
			}
			failures++
			if !retry.Sleep(ctx, cs.c.backoff(failures)) {
				return
			}
		}
	}
}

// read gets the next response: the read-ahead when it starts at the
// Consumer's offset, else a read sent now. With walk, the response is
// not indexed: the Consumer verifies and yields it batch by batch
// (Client.walk); that is so unless a Transformer or a consumed hook wants
// the whole response indexed. A nil m with a nil error: ConsumeFrom's
// time was resolved.
func (cs *Consumer) read(ctx context.Context) (m *Messages, walk bool, err error) {
	if cs.pending {
		return nil, false, cs.resolve(ctx)
	}
	walk = cs.c.cfg.transformer == nil && len(cs.c.cfg.hooks.consumed) == 0
	if cs.ahead.cl != nil && cs.ahead.offset == cs.next {
		cs.chainAfter(&cs.ahead)
		cs.cur = cs.ahead.buf
		r := cs.ahead
		cs.ahead = consumeReq{}
		m, err = cs.c.consumeRecv(ctx, &r, cs.arrived(ctx), walk)
		if err == nil || !r.tail || ctx.Err() != nil {
			return m, walk, err
		}
		// A request sent ahead at the end failed (a broker without
		// ConsumeNext, one that no longer holds the consume it follows, a
		// dropped connection): read again the ordinary way, which reports
		// a lasting failure.
		cs.atEnd = false
	}
	cs.dropAhead()
	if cs.cur == nil {
		cs.cur = &cs.buf
	}
	refused := cs.c.cfg.nextRefused.Load()
	r, err := cs.c.consumeSend(ctx, cs.topic, cs.next, cs.cfg.limit, cs.cur, &cs.cfg, false)
	if err != nil {
		return nil, walk, err
	}
	r.tail = cs.chainAfter(&r)
	m, err = cs.c.consumeRecv(ctx, &r, cs.arrived(ctx), walk)
	if err != nil && ctx.Err() == nil && (r.tail || !refused && cs.c.cfg.nextRefused.Load()) {
		// It may have failed for the ConsumeNext behind it, or for one
		// sent before on the same connection (a broker without
		// ConsumeNext closes the connection; the Client learnt it while
		// r waited): once more, alone.
		cs.atEnd = false
		cs.dropAhead()
		return cs.read(ctx)
	}
	return m, walk, err
}

// chainAfter sends a ConsumeNext behind r, the request about to be
// received, when the last answer reached the topic's end and none is
// behind r yet: the broker then holds the next long poll while r's answer
// travels and is yielded. It goes out after the messages before r were
// yielded, not before: a write delays the message it precedes. It reports
// whether it sent one.
func (cs *Consumer) chainAfter(r *consumeReq) bool {
	if !cs.atEnd || cs.chain.cl != nil || cs.c.cfg.nextRefused.Load() {
		return false
	}
	buf := cs.freeBuf(r.buf)
	if buf == nil {
		return false
	}
	next, err := cs.c.consumeSendNext(r, cs.cfg.limit, buf, &cs.cfg)
	if err != nil {
		return false
	}
	cs.chain = next
	return true
}

// yieldIndexed yields the messages of an indexed response; false: yield
// returned false.
func (cs *Consumer) yieldIndexed(m *Messages, yield func(Message, error) bool) bool {
	for i := range m.Len() {
		msg := m.At(i)
		cs.next = msg.Offset + 1
		if !yield(msg, m.Err(i)) {
			return false
		}
	}
	return true
}

// arrived returns the callback consumeRecv calls once a response is in,
// before it is verified and iterated:
//   - a ConsumeNext sent behind the request answered now gets its offset
//     (brokerNext) and becomes the next request;
//   - when the response ends below the topic's end (as its batch headers
//     tell) and no request is ahead, the read-ahead goes out;
//   - whether it reached the end is noted: the next request then gets a
//     ConsumeNext behind it (chainAfter).
//
// A prediction that indexing then contradicts leaves requests at the wrong
// offset, which the next turn drops.
func (cs *Consumer) arrived(ctx context.Context) func(m *Messages, next, brokerNext uint64) {
	if cs.arrivedFn == nil {
		cs.arrivedFn = func(m *Messages, next, brokerNext uint64) {
			if cs.chain.cl != nil {
				cs.chain.resolveNext(brokerNext)
				cs.ahead, cs.chain = cs.chain, consumeReq{}
			}
			cs.atEnd = brokerNext >= m.End
			if cs.ahead.cl == nil && next > m.first && next < m.End {
				cs.readAhead(cs.ctx, next)
			}
		}
	}
	cs.ctx = ctx
	return cs.arrivedFn
}

// freeBuf returns a read buffer that no request in flight, no iteration
// and not r (about to be received) uses.
func (cs *Consumer) freeBuf(r *ConsumeBuffer) *ConsumeBuffer {
	for _, b := range [...]*ConsumeBuffer{&cs.buf, &cs.alt, &cs.spare} {
		if b != r && b != cs.cur && b != cs.ahead.buf && b != cs.chain.buf {
			return b
		}
	}
	return nil // three buffers: never more than two are in use besides one
}

// readAhead sends the request for the messages from next into a buffer
// not being iterated: the broker sends them, and the connection's
// background reader reads them, while the caller goes through the current
// ones. A failure is left to the ordinary read that follows.
func (cs *Consumer) readAhead(ctx context.Context, next uint64) {
	buf := cs.freeBuf(nil)
	if buf == nil {
		return
	}
	r, err := cs.c.consumeSend(ctx, cs.topic, next, cs.cfg.limit, buf, &cs.cfg, true)
	if err == nil {
		cs.ahead = r
	}
}

// dropAhead gives up the requests in flight ahead and frees their
// buffers (freeBuf counts the buffer of any request still named here as
// in use).
func (cs *Consumer) dropAhead() {
	if cs.chain.cl != nil {
		cs.chain.drop()
	}
	if cs.ahead.cl != nil {
		cs.ahead.drop()
	}
	cs.chain, cs.ahead = consumeReq{}, consumeReq{}
}

// skippable reports, with ConsumeSkipCorrupt, whether err names damaged
// offsets to read past, and the offset after them.
func (cs *Consumer) skippable(err error) (uint64, bool) {
	var e *Error
	if !cs.cfg.skip || !errors.As(err, &e) || e.Code != netproto.CodeCorrupt || e.End <= e.Start || e.End <= cs.next || e.Start > cs.next {
		return 0, false
	}
	return e.End, true
}

// resolve turns ConsumeFrom's time into the starting offset.
func (cs *Consumer) resolve(ctx context.Context) error {
	off, err := cs.c.OffsetAt(ctx, cs.topic, cs.cfg.from)
	if err != nil {
		return err
	}
	cs.next, cs.pending = off, false
	return nil
}
