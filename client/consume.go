package client

import (
	"context"
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// ConsumeBuffer receives what Consume reads: the record batches exactly as
// the broker sent them (the connection's reader goroutine reads them
// straight into it, no intermediate copy) and an index of the messages in
// them. Reuse one buffer across calls: once it has grown to the working
// size, Consume allocates nothing. The zero value is ready to use.
//
// A buffer belongs to one Consume at a time. Each Consume overwrites what
// the last one returned: message values alias the buffer and stay valid
// only until the next Consume with it. Copy what must outlive that.
type ConsumeBuffer struct {
	raw  []byte
	msgs Messages
}

// Messages is the result of one Consume: the messages [offset, Next()) of
// a topic, trimmed from the whole batches the broker returned, every batch
// checksum verified. It lives in its ConsumeBuffer and is overwritten by
// the next Consume with that buffer.
type Messages struct {
	// Start and End are the topic's valid offset range [Start, End) when
	// the broker served the read.
	Start, End uint64

	first uint64
	refs  []msgRef
}

type msgRef struct {
	value []byte // aliases ConsumeBuffer.raw
	time  int64  // the batch's append time, unix nanoseconds
}

// Message is one message of a topic.
type Message struct {
	Offset uint64
	// Time is when the broker appended the message's batch.
	Time time.Time
	// Value aliases a buffer (the ConsumeBuffer, or the Consumer's) and is
	// valid until that buffer's next read. Copy it to keep it.
	Value []byte
}

// Len returns the number of messages.
func (m *Messages) Len() int { return len(m.refs) }

// At returns message i, 0 <= i < Len(); its offset is Next()-Len()+i.
func (m *Messages) At(i int) Message {
	r := &m.refs[i]
	return Message{Offset: m.first + uint64(i), Time: time.Unix(0, r.time), Value: r.value}
}

// Next returns the offset to consume next: after the last message, or the
// requested offset when there is none (the long poll expired).
func (m *Messages) Next() uint64 { return m.first + uint64(len(m.refs)) }

// All iterates over the messages in offset order.
func (m *Messages) All() iter.Seq[Message] {
	return func(yield func(Message) bool) {
		for i := range m.refs {
			if !yield(m.At(i)) {
				return
			}
		}
	}
}

// Consume reads up to limit messages of topic starting at offset (limit <=
// 0: as many as the byte limit allows) into buf, which may be nil for a
// one-off read. The broker returns whole batches; Consume verifies each
// one's checksums (a batch that fails gives ErrCorrupt) and trims the
// messages to [offset, offset+limit). Reading at the end offset returns no
// messages, at once or, with ConsumeWait, as soon as data arrives. An
// offset outside [start, end] fails with ErrOffsetOutOfRange; the *Error
// carries the valid range in Start and End.
//
// The result lives in buf: see ConsumeBuffer for how long it stays valid.
// If ctx ends first Consume returns ctx.Err() and buf's contents are
// undefined.
func (c *Client) Consume(ctx context.Context, topic string, offset uint64, limit int, buf *ConsumeBuffer, opts ...ConsumeOption) (*Messages, error) {
	var cfg consumeConfig
	if len(opts) > 0 {
		cfg = applyConsumeOptions(opts) // the options' pointer escapes; keep it off this frame
	}
	if buf == nil {
		buf = new(ConsumeBuffer)
	}
	return c.consume(ctx, topic, offset, limit, buf, &cfg)
}

func applyConsumeOptions(opts []ConsumeOption) consumeConfig {
	var cfg consumeConfig
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

func (c *Client) consume(ctx context.Context, topic string, offset uint64, limit int, buf *ConsumeBuffer, cfg *consumeConfig) (*Messages, error) {
	m := &buf.msgs
	m.Start, m.End, m.first = 0, 0, offset
	clear(m.refs) // drop the old aliases
	m.refs = m.refs[:0]
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	var wireLimit uint32 // 0: no message limit
	if limit > 0 {
		wireLimit = uint32(min(uint64(limit), math.MaxUint32))
	}
	waitMS := uint32(min((cfg.wait+time.Millisecond-1)/time.Millisecond, math.MaxUint32))
	cl := getCall(netproto.OpConsume)
	defer putCall(cl)
	req := netproto.ConsumeRequest{Topic: []byte(topic), Offset: offset, Limit: wireLimit, MaxBytes: cfg.maxBytes, MaxWaitMillis: waitMS}
	cl.head = req.AppendTo(cl.head)
	cl.cons = buf
	if err := c.roundTrip(ctx, cl, nil); err != nil {
		return nil, err
	}
	m.Start, m.End = cl.fixed.Start, cl.fixed.End
	trim := uint64(math.MaxUint64)
	if wireLimit > 0 {
		trim = uint64(wireLimit)
	}
	if err := m.index(topic, buf.raw, offset, trim); err != nil {
		clear(m.refs)
		m.refs = m.refs[:0]
		return nil, err
	}
	return m, nil
}

// index verifies the batches in raw and records the messages in
// [offset, offset+limit). The batches must follow each other densely and
// the first must hold offset.
func (m *Messages) index(topic string, raw []byte, offset, limit uint64) error {
	stop := offset + limit
	if stop < offset {
		stop = math.MaxUint64
	}
	sc := record.NewScanner(raw)
	var next uint64
	for first := true; sc.Next(); first = false {
		h := sc.Header()
		switch {
		case first && (h.BaseOffset > offset || h.NextOffset() <= offset):
			return corrupt(topic, offset, fmt.Errorf("first batch holds offsets %d..%d", h.BaseOffset, h.LastOffset()))
		case !first && h.BaseOffset != next:
			return corrupt(topic, offset, fmt.Errorf("batch at offset %d follows one that ends at %d", h.BaseOffset, next))
		case h.Flags != 0:
			return fmt.Errorf("client: topic %q offsets %d..%d: %w: flags %#04x (this client reads plain batches only)",
				topic, h.BaseOffset, h.LastOffset(), record.ErrCodec, h.Flags)
		}
		next = h.NextOffset()
		it := record.Messages(sc.Batch(), h)
		off := h.BaseOffset
		for v, ok := it.Next(); ok && off < stop; v, ok = it.Next() {
			if off >= offset {
				m.refs = append(m.refs, msgRef{value: v, time: h.AppendTime})
			}
			off++
		}
		if err := it.Err(); err != nil {
			return corrupt(topic, h.BaseOffset, err)
		}
		if next >= stop {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return corrupt(topic, offset, err)
	}
	return nil
}
