package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// builderPool holds record.Builders for Produce; each keeps its buffer.
var builderPool = sync.Pool{New: func() any { return new(record.Builder) }}

// keepBuilder is the largest batch whose builder goes back to the pool.
const keepBuilder = 4 << 20

// Produce appends msgs to topic as one batch and returns the offset given
// to the first message; the others follow densely. The messages are copied
// into a pooled batch buffer: nothing is allocated per message. When the
// call fails the batch may or may not have been stored (check the error
// with IsRetriable and errors.Is; a lost connection leaves it unknown).
func (c *Client) Produce(ctx context.Context, topic string, msgs ...[]byte) (uint64, error) {
	if len(msgs) == 0 {
		return 0, fmt.Errorf("client: produce to %q: %w", topic, record.ErrEmpty)
	}
	b := builderPool.Get().(*record.Builder)
	defer func() {
		if b.Size() <= keepBuilder {
			builderPool.Put(b)
		}
	}()
	b.Reset()
	for _, m := range msgs {
		if err := b.Add(m); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
		}
	}
	batch, err := b.Finish()
	if err != nil {
		return 0, err
	}
	return c.ProduceBatch(ctx, topic, batch)
}

// ProduceBatch appends a batch built with record.Builder or
// record.AppendBatch to topic and returns the offset given to its first
// message. The batch is written to the socket as it is (no copy); the
// broker verifies it (ErrBatchInvalid) and stamps offsets and time on its
// own copy, so batch may be reused once ProduceBatch returns.
func (c *Client) ProduceBatch(ctx context.Context, topic string, batch []byte) (uint64, error) {
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	if len(batch) < record.HeaderSize {
		// The broker would take this for a malformed frame and hang up.
		return 0, &Error{Code: netproto.CodeBatchInvalid, Message: fmt.Sprintf("batch of %d bytes is shorter than a batch header", len(batch))}
	}
	cl := getCall(netproto.OpProduce)
	defer putCall(cl)
	req := netproto.ProduceRequest{Topic: []byte(topic)}
	cl.head = req.AppendTo(cl.head)
	if err := c.roundTrip(ctx, cl, batch); err != nil {
		return 0, err
	}
	var resp netproto.ProduceResponse
	if err := resp.Decode(cl.body); err != nil {
		return 0, err
	}
	return resp.BaseOffset, nil
}
