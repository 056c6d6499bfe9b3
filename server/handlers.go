package server

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// handle answers one request; it owns body until it returns.
func (c *conn) handle(h netproto.Header, body []byte) {
	defer c.handlers.Done()
	defer func() { <-c.sem }()
	defer c.putBuf(body)
	var ok bool
	switch h.Opcode {
	case netproto.OpProduce:
		ok = c.produce(h, body)
	case netproto.OpConsume:
		ok = c.consume(h, body)
	case netproto.OpWatch:
		ok = c.watch(h, body)
	default:
		ok = c.admin(h, body)
	}
	if !ok {
		c.wmu.Lock()
		if !c.broken {
			c.fail(fmt.Errorf("server: closing after a bad request"))
		}
		c.wmu.Unlock()
	}
}

// respond writes a success frame with msg as body, or an error frame.
// A decode error (malformed body) closes the connection after the answer.
func (c *conn) respond(h netproto.Header, msg netproto.Encoder, err error) bool {
	if err != nil {
		return c.writeError(h.Opcode, h.RequestID, wireError(err))
	}
	var b [512]byte
	return c.writeFrame(netproto.AppendFrame(b[:0], netproto.Header{Opcode: h.Opcode, Flags: netproto.FlagResponse, RequestID: h.RequestID}, msg))
}

// decodeFailed answers a body that does not decode and closes the connection.
func (c *conn) decodeFailed(h netproto.Header, err error) bool {
	c.writeError(h.Opcode, h.RequestID, wireError(err))
	return false
}

func (c *conn) produce(h netproto.Header, body []byte) bool {
	var req netproto.ProduceRequest
	if err := req.Decode(body); err != nil {
		return c.decodeFailed(h, err)
	}
	topic := string(req.Topic)
	base, err := c.s.e.Append(c.ctx, topic, req.Batch)
	if err != nil && c.s.opts.AutoCreateTopics && isNotFound(err) {
		if cerr := c.s.e.CreateTopic(topic); cerr == nil || isExists(cerr) {
			base, err = c.s.e.Append(c.ctx, topic, req.Batch)
		}
	}
	if err != nil {
		return c.writeError(h.Opcode, h.RequestID, wireError(err))
	}
	resp := netproto.ProduceResponse{BaseOffset: base, Count: countOf(req.Batch)}
	var b [64]byte
	f, start := netproto.BeginFrame(b[:0], netproto.Header{Opcode: h.Opcode, Flags: netproto.FlagResponse, RequestID: h.RequestID})
	return c.writeFrame(netproto.EndFrame(resp.AppendTo(f), start))
}

func (c *conn) consume(h netproto.Header, body []byte) bool {
	var req netproto.ConsumeRequest
	if err := req.Decode(body); err != nil {
		return c.decodeFailed(h, err)
	}
	maxBytes := int64(c.s.opts.MaxConsumeBytes)
	if req.MaxBytes > 0 && int64(req.MaxBytes) < maxBytes {
		maxBytes = int64(req.MaxBytes)
	}
	topic := string(req.Topic)
	st := getState()
	defer putState(st)
	res := &st.res
	err := c.s.e.Read(topic, req.Offset, uint64(req.Limit), maxBytes, res)
	if err == nil && len(res.Chunks) == 0 && req.MaxWaitMillis > 0 {
		wait := min(time.Duration(req.MaxWaitMillis)*time.Millisecond, c.s.opts.MaxWait)
		ctx, cancel := context.WithTimeout(c.ctx, wait)
		werr := c.s.e.Wait(ctx, topic, req.Offset)
		cancel()
		if werr == nil {
			err = c.s.e.Read(topic, req.Offset, uint64(req.Limit), maxBytes, res)
		} else if ctx.Err() == nil {
			err = werr // the topic went away, or the engine closed
		}
	}
	if err != nil {
		return c.writeError(h.Opcode, h.RequestID, wireError(err))
	}
	return c.writeConsume(h, st)
}

func (c *conn) watch(h netproto.Header, body []byte) bool {
	var req netproto.WatchRequest
	if err := req.Decode(body); err != nil {
		return c.decodeFailed(h, err)
	}
	if c.watches.Add(1) > int32(c.s.opts.MaxWatches) {
		c.watches.Add(-1)
		return c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeTooBusy, "too many watches on this connection"))
	}
	defer c.watches.Add(-1)
	topics := make([]string, len(req.Topics))
	for i, t := range req.Topics {
		topics[i] = string(t)
		if _, _, err := c.s.e.Offsets(topics[i]); err != nil {
			return c.writeError(h.Opcode, h.RequestID, wireError(err))
		}
	}
	// The watch runs until the connection ends: one goroutine per topic
	// sends an event whenever the topic's range changes.
	<-c.sem // a watch does not hold an in-flight slot while it waits
	defer func() { c.sem <- struct{}{} }()
	done := make(chan struct{}, len(topics))
	for _, t := range topics {
		go func() {
			c.watchTopic(h, t)
			done <- struct{}{}
		}()
	}
	for range topics {
		<-done
	}
	return true
}

func (c *conn) watchTopic(h netproto.Header, topic string) {
	var lastStart, lastEnd uint64
	first := true
	for {
		start, end, err := c.s.e.Offsets(topic)
		if err != nil {
			c.writeError(h.Opcode, h.RequestID, wireError(err))
			return
		}
		if first || start != lastStart || end != lastEnd {
			ev := netproto.WatchEvent{Topic: []byte(topic), Start: start, End: end}
			hdr := netproto.Header{Opcode: netproto.OpWatchEvent, Flags: netproto.FlagResponse, RequestID: h.RequestID}
			if !c.writeFrame(netproto.AppendFrame(nil, hdr, &ev)) {
				return
			}
			first, lastStart, lastEnd = false, start, end
		}
		ctx, cancel := context.WithTimeout(c.ctx, time.Second) // also notices start moving
		err = c.s.e.Wait(ctx, topic, end)
		cancel()
		if c.ctx.Err() != nil {
			return
		}
		if err != nil && ctx.Err() == nil {
			c.writeError(h.Opcode, h.RequestID, wireError(err))
			return
		}
	}
}

// admin handles the small requests.
func (c *conn) admin(h netproto.Header, body []byte) bool {
	e := c.s.e
	switch h.Opcode {
	case netproto.OpCreateTopic:
		var req netproto.CreateTopicRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		return c.respond(h, &netproto.CreateTopicResponse{}, e.CreateTopic(string(req.Topic)))
	case netproto.OpDeleteTopic:
		var req netproto.DeleteTopicRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		return c.respond(h, &netproto.DeleteTopicResponse{}, e.DeleteTopic(string(req.Topic)))
	case netproto.OpTopics:
		var req netproto.TopicsRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		names, err := c.topics(string(req.Prefix), string(req.Regexp))
		return c.respond(h, &netproto.TopicsResponse{Names: names}, err)
	case netproto.OpOffsets:
		var req netproto.OffsetsRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		var resp netproto.OffsetsResponse
		var err error
		resp.Start, resp.End, err = e.Offsets(string(req.Topic))
		if err == nil && req.Time != 0 {
			resp.AtTime, err = e.OffsetAt(string(req.Topic), time.Unix(0, req.Time))
		}
		return c.respond(h, &resp, err)
	case netproto.OpTruncate:
		var req netproto.TruncateRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		off, err := req.BeforeOffset, error(nil)
		if req.BeforeTime != 0 {
			off, err = e.OffsetAt(string(req.Topic), time.Unix(0, req.BeforeTime))
		}
		var resp netproto.TruncateResponse
		if err == nil {
			resp.Start, err = e.TruncateBefore(c.ctx, string(req.Topic), off)
		}
		return c.respond(h, &resp, err)
	case netproto.OpInitProducer:
		return c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeUnknownOpcode, "idempotent producers are not supported by this broker yet"))
	}
	return c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeUnknownOpcode, h.Opcode.String()))
}

// maxRegexp bounds a topics regexp so a request cannot make the broker
// compile something huge.
const maxRegexp = 1024

func (c *conn) topics(prefix, expr string) ([][]byte, error) {
	var re *regexp.Regexp
	if expr != "" {
		if len(expr) > maxRegexp {
			return nil, netproto.NewError(netproto.CodeMalformed, "regexp longer than 1024 bytes")
		}
		var err error
		if re, err = regexp.Compile(expr); err != nil {
			return nil, netproto.NewError(netproto.CodeMalformed, "bad regexp: "+err.Error())
		}
	}
	var out [][]byte
	for _, n := range c.s.e.Topics(prefix) {
		if re == nil || re.MatchString(n) {
			out = append(out, []byte(n))
		}
	}
	return out, nil
}

func isNotFound(err error) bool { return errors.Is(err, engine.ErrTopicNotFound) }
func isExists(err error) bool   { return errors.Is(err, engine.ErrTopicExists) }
