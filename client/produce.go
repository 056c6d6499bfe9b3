package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// builderPool holds record.Builders for Produce; each keeps its buffers.
var builderPool = sync.Pool{New: func() any { return new(record.Builder) }}

// keepBuilder is the largest batch whose builder goes back to the pool.
const keepBuilder = 4 << 20

// Header is one header of a message: a string key and a bytes value.
type Header = record.MessageHeader

// Produce appends msgs to topic as one batch and returns the offset given
// to the first message; the others follow densely. The messages are copied
// into a pooled batch buffer (compressed with WithCompression's codec):
// nothing is allocated per message, and a message costs its length varint
// and nothing more. A single uncompressed message of 64 KiB or more is
// not copied: it is hashed and written to the socket from msgs[0] itself. When the call fails the batch may or may not have been
// stored (check the error with IsRetriable and errors.Is; a lost
// connection leaves it unknown; a Producer resends safely).
func (c *Client) Produce(ctx context.Context, topic string, msgs ...[]byte) (uint64, error) {
	if len(msgs) == 0 {
		return 0, fmt.Errorf("client: produce to %q: %w", topic, record.ErrEmpty)
	}
	if c.rewritesMessages() {
		ms := make([]Message, len(msgs))
		for i, m := range msgs {
			ms[i].Value = m
		}
		return c.ProduceMessages(ctx, topic, ms...)
	}
	if len(msgs) == 1 && len(msgs[0]) >= sendInPlace && c.cfg.codec == record.CodecNone {
		return c.produceInPlace(ctx, topic, msgs[0])
	}
	b := builderPool.Get().(*record.Builder)
	defer putBuilder(b)
	b.Reset()
	for _, m := range msgs {
		if err := b.Add(m); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
		}
	}
	return c.produceBuilt(ctx, topic, b)
}

// ProduceMessages is Produce for messages with keys, headers and
// timestamps (the extended encoding; Offset and Time are ignored). A zero
// Timestamp is stored as none; so is the Unix epoch.
func (c *Client) ProduceMessages(ctx context.Context, topic string, msgs ...Message) (uint64, error) {
	if len(msgs) == 0 {
		return 0, fmt.Errorf("client: produce to %q: %w", topic, record.ErrEmpty)
	}
	b := builderPool.Get().(*record.Builder)
	defer putBuilder(b)
	b.Reset()
	rewrite := c.rewritesMessages()
	for i := range msgs {
		m := &msgs[i]
		if rewrite {
			cp := *m
			if err := c.beforeProduce(ctx, topic, &cp); err != nil {
				return 0, err
			}
			m = &cp
		}
		if err := addMessage(b, m); err != nil {
			return 0, err
		}
	}
	return c.produceBuilt(ctx, topic, b)
}

func putBuilder(b *record.Builder) {
	if b.Size() <= keepBuilder {
		builderPool.Put(b)
	}
}

// addMessage adds m to b in the extended encoding.
func addMessage(b *record.Builder, m *Message) error {
	var ts int64
	if !m.Timestamp.IsZero() {
		ts = m.Timestamp.UnixNano()
	}
	if err := b.AddMessage(ts, m.Key, m.Value, m.Headers); err != nil {
		return fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
	}
	return nil
}

// produceBuilt finishes b with the Client's codec and produces it. The raw
// batch must fit the Client's frame limit as well as the compressed one,
// so that a consumer with the same limit can decompress it.
func (c *Client) produceBuilt(ctx context.Context, topic string, b *record.Builder) (uint64, error) {
	if b.Size() > int(c.cfg.maxBody) {
		return 0, fmt.Errorf("%w: batch of %d bytes before compression, frame limit %d", ErrMessageTooLarge, b.Size(), c.cfg.maxBody)
	}
	batch, err := b.FinishCodec(c.cfg.codec)
	if err != nil {
		return 0, fmt.Errorf("client: produce to %q: %w", topic, err)
	}
	return c.ProduceBatch(ctx, topic, batch)
}

// ProduceBatch appends a batch built with record.Builder or
// record.AppendBatch to topic and returns the offset given to its first
// message. The batch is written to the socket as it is (no copy, no
// compression); the broker verifies it (ErrBatchInvalid) and stamps
// offsets and time on its own copy, so batch may be reused once
// ProduceBatch returns.
func (c *Client) ProduceBatch(ctx context.Context, topic string, batch []byte) (uint64, error) {
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	if len(batch) < record.HeaderSize {
		// The broker would take this for a malformed frame and hang up.
		return 0, &Error{Code: netproto.CodeBatchInvalid, Message: fmt.Sprintf("batch of %d bytes is shorter than a batch header", len(batch))}
	}
	return c.produceParts(ctx, topic, parts{batch})
}

// sendInPlace is the size from which Produce of a single message sends it
// from the caller's memory instead of copying it into a batch buffer.
const sendInPlace = 64 << 10

// headPool holds the header buffers of produceInPlace.
var headPool = sync.Pool{New: func() any { return new([record.HeaderSize + 16]byte) }}

// produceInPlace produces the one plain message msg as a batch written in
// three pieces (header and length, msg itself, padding): a large message
// is hashed once and goes from the caller's memory to the socket with no
// copy into a batch buffer.
func (c *Client) produceInPlace(ctx context.Context, topic string, msg []byte) (uint64, error) {
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	hb := headPool.Get().(*[record.HeaderSize + 16]byte)
	defer headPool.Put(hb)
	head, pad, err := record.SingleParts(hb[:0], msg)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
	}
	if size := len(head) + len(msg) + len(pad); size > int(c.cfg.maxBody) {
		return 0, fmt.Errorf("%w: batch of %d bytes before compression, frame limit %d", ErrMessageTooLarge, size, c.cfg.maxBody)
	}
	return c.produceParts(ctx, topic, parts{head, msg, pad})
}

// produceParts sends the batch p (its pieces one after the other; p[0]
// starts with the batch header) and returns its first offset.
func (c *Client) produceParts(ctx context.Context, topic string, p parts) (uint64, error) {
	batch := p[0]
	cl := getCall(netproto.OpProduce)
	defer putCall(cl)
	req := netproto.ProduceRequest{Topic: []byte(topic)}
	cl.head = req.AppendTo(cl.head)
	var start time.Time
	if len(c.cfg.hooks.produced) > 0 {
		start = time.Now()
	}
	cn, err := c.connFor(ctx, topic)
	if err == nil {
		if err = cn.sendParts(cl, p); err == nil {
			err = cn.wait(ctx, cl)
		}
		if err != nil && ctx.Err() == nil && IsRetriable(err) {
			c.routeFailed()
		}
	}
	var resp netproto.ProduceResponse
	if err == nil {
		err = resp.Decode(cl.body)
	}
	if !start.IsZero() {
		if h, herr := record.ParseHeader(batch); herr == nil {
			c.cfg.hooks.batchProduced(topic, resp.BaseOffset, int(h.Count), p.len(), time.Since(start), err)
		}
	}
	if err != nil {
		return 0, err
	}
	return resp.BaseOffset, nil
}
