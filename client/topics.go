package client

import (
	"context"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// CreateTopic creates an empty topic. It fails with ErrTopicExists if the
// topic is there, ErrBadTopicName if the name is not 1..249 bytes of
// [A-Za-z0-9._-] (or is "." or "..").
func (c *Client) CreateTopic(ctx context.Context, topic string) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	cl := getCall(netproto.OpCreateTopic)
	req := netproto.CreateTopicRequest{Topic: []byte(topic)}
	cl.head = req.AppendTo(cl.head)
	var resp netproto.CreateTopicResponse
	return c.simple(ctx, cl, &resp)
}

// DeleteTopic deletes a topic and all its messages.
func (c *Client) DeleteTopic(ctx context.Context, topic string) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	cl := getCall(netproto.OpDeleteTopic)
	req := netproto.DeleteTopicRequest{Topic: []byte(topic)}
	cl.head = req.AppendTo(cl.head)
	var resp netproto.DeleteTopicResponse
	return c.simple(ctx, cl, &resp)
}

// ListTopics returns the names of the topics that start with prefix and,
// when expr is not empty, match the regular expression expr (RE2 syntax,
// unanchored, evaluated by the broker; an invalid one fails with
// ErrMalformed), sorted.
func (c *Client) ListTopics(ctx context.Context, prefix, expr string) ([]string, error) {
	cl := getCall(netproto.OpTopics)
	req := netproto.TopicsRequest{Prefix: []byte(prefix), Regexp: []byte(expr)}
	cl.head = req.AppendTo(cl.head)
	defer putCall(cl) // after the names are copied out of cl.body
	if err := c.roundTrip(ctx, cl, nil); err != nil {
		return nil, err
	}
	var resp netproto.TopicsResponse
	if err := resp.Decode(cl.body); err != nil {
		return nil, err
	}
	names := make([]string, len(resp.Names))
	for i, n := range resp.Names {
		names[i] = string(n)
	}
	return names, nil
}

// Offsets returns the topic's valid offset range: messages [start, end)
// can be read; end is the offset the next message will get.
func (c *Client) Offsets(ctx context.Context, topic string) (start, end uint64, err error) {
	resp, err := c.offsets(ctx, topic, 0)
	return resp.Start, resp.End, err
}

// OffsetAt returns the offset of the first message appended at or after t
// (messages share their batch's append time), or the end offset when every
// message is older.
func (c *Client) OffsetAt(ctx context.Context, topic string, t time.Time) (uint64, error) {
	resp, err := c.offsets(ctx, topic, unixNanoOrOne(t))
	return resp.AtTime, err
}

// unixNanoOrOne maps t to the wire, where 0 means "no time": any time up to
// the epoch reads as the epoch's first nanosecond, before every append.
func unixNanoOrOne(t time.Time) int64 {
	if t.IsZero() || t.UnixNano() <= 0 {
		return 1
	}
	return t.UnixNano()
}

func (c *Client) offsets(ctx context.Context, topic string, at int64) (netproto.OffsetsResponse, error) {
	var resp netproto.OffsetsResponse
	if err := checkTopic(topic); err != nil {
		return resp, err
	}
	cl := getCall(netproto.OpOffsets)
	req := netproto.OffsetsRequest{Topic: []byte(topic), Time: at}
	cl.head = req.AppendTo(cl.head)
	defer putCall(cl)
	// On the topic's leader, as its produces: a follower may not have
	// applied yet what the leader acknowledged a moment ago.
	cn, err := c.connFor(ctx, topic)
	if err == nil {
		err = cn.send(cl, nil)
	}
	if err == nil {
		err = cn.wait(ctx, cl)
	}
	if err == nil {
		err = resp.Decode(cl.body)
	}
	return resp, err
}

// TruncateBefore drops the messages below offset, in whole segments: the
// returned new start offset may lie below offset. An offset past the end
// fails with ErrOffsetOutOfRange.
func (c *Client) TruncateBefore(ctx context.Context, topic string, offset uint64) (start uint64, err error) {
	return c.truncate(ctx, topic, offset, 0)
}

// TruncateBeforeTime drops the messages appended before t, in whole
// segments, and returns the new start offset.
func (c *Client) TruncateBeforeTime(ctx context.Context, topic string, t time.Time) (start uint64, err error) {
	return c.truncate(ctx, topic, 0, unixNanoOrOne(t))
}

func (c *Client) truncate(ctx context.Context, topic string, offset uint64, before int64) (uint64, error) {
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	cl := getCall(netproto.OpTruncate)
	req := netproto.TruncateRequest{Topic: []byte(topic), BeforeOffset: offset, BeforeTime: before}
	cl.head = req.AppendTo(cl.head)
	var resp netproto.TruncateResponse
	err := c.simple(ctx, cl, &resp)
	return resp.Start, err
}

// InitProducer asks the broker for a fresh producer id, for batches that
// carry one (record.SetProducer) so that the broker stores a retried batch
// once. A Producer calls it by itself (see ProducerIdempotent). A broker
// without idempotent producers answers ErrUnknownOpcode.
func (c *Client) InitProducer(ctx context.Context) (uint64, error) {
	cl := getCall(netproto.OpInitProducer)
	var resp netproto.InitProducerResponse
	if err := c.simple(ctx, cl, &resp); err != nil {
		return 0, err
	}
	if resp.ProducerID == 0 {
		return 0, &Error{Code: netproto.CodeMalformed, Message: "broker answered InitProducer with producer id 0"}
	}
	return resp.ProducerID, nil
}
