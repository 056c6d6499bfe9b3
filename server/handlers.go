package server

import (
	"context"
	"errors"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/netproto"
)

// handle answers one request other than Hello, Produce and Consume (the
// reader answers Hello itself, hands produces to the connection's acker
// and consumes to handleConsume) and
// releases its in-flight slot; it owns body until it returns. A Watch
// releases the slot itself once registered.
func (c *conn) handle(h netproto.Header, body []byte, start time.Time) {
	defer c.handlers.Done()
	if e := c.uncheckedOp(h.Opcode); e != nil {
		ok := c.writeError(h.Opcode, h.RequestID, e)
		c.putBuf(body)
		if !ok {
			c.endAfterError()
		}
		<-c.sem
		return
	}
	if h.Opcode == netproto.OpWatch {
		c.watch(h, body)
		return
	}
	var ok bool
	switch h.Opcode {
	case netproto.OpGroupJoin, netproto.OpGroupFetch, netproto.OpGroupAck, netproto.OpGroupNack,
		netproto.OpGroupExtend, netproto.OpGroupCommit, netproto.OpGroupDescribe, netproto.OpGroupList,
		netproto.OpGroupSeek, netproto.OpGroupDelete, netproto.OpGroupLeave:
		ok = c.group(h, body)
	default:
		ok = c.admin(h, body)
	}
	if o := c.s.opts.Observer; o != nil {
		o.ObserveRequest(h.Opcode, time.Since(start))
	}
	c.putBuf(body)
	if !ok {
		c.endAfterError()
	}
	<-c.sem
}

func respHeader(h netproto.Header) netproto.Header {
	return netproto.Header{Opcode: h.Opcode, Flags: netproto.FlagResponse, RequestID: h.RequestID}
}

// respond writes a success frame with msg as body, or an error frame.
func (c *conn) respond(h netproto.Header, msg netproto.Encoder, err error) bool {
	if err != nil {
		return c.replyError(h, err)
	}
	return c.writeFrame(netproto.AppendFrame(make([]byte, 0, 512), respHeader(h), msg))
}

// decodeFailed answers a body that does not decode; the caller returns
// false and the connection ends.
func (c *conn) decodeFailed(h netproto.Header, err error) bool {
	c.replyError(h, err)
	return false
}

// enqueued is a produce the reader decoded and queued for its topic's
// writer, or why it could not.
type enqueued struct {
	pending engine.Pending
	topic   string
	count   uint32
	err     error // the produce failed before it was queued
	bad     bool  // err is a body that does not decode: the connection ends
	// waiters is, for a direct produce, how many long polls waited on the
	// topic just before the append (which wakes them).
	waiters int
}

// enqueue decodes a produce and queues its batch. The reader calls it, so
// that the produces of a connection are queued, and stored, in the order
// they arrived while their acknowledgements are awaited concurrently. It
// blocks while the topic's queue is full: backpressure, as for a full set
// of in-flight slots. The batch aliases body, which must stay untouched
// until the append is answered.
//
// With direct set the reader, having nothing else to read, writes the batch
// itself when the topic's writer is idle (logsvc.Producer.EnqueueDirect):
// the returned pending is then already answered.
func (c *conn) enqueue(body []byte, direct bool) enqueued {
	var req netproto.ProduceRequest
	if err := req.Decode(body); err != nil {
		return enqueued{err: err, bad: true}
	}
	topic := c.topicName(req.Topic)
	if err := c.authorize(auth.Produce, topic); err != nil {
		return enqueued{topic: topic, err: err} // nothing stored, nothing created
	}
	enq := c.s.e.Enqueue
	waiters := 0
	if direct {
		enq = c.s.e.EnqueueDirect
		if c.s.waiters != nil {
			waiters = c.s.waiters(topic)
		}
	}
	p, err := enq(c.pollCtx, topic, req.Batch)
	if err != nil && c.s.opts.AutoCreateTopics && isNotFound(err) {
		// A create that fails answers with its own reason (disk, limits),
		// never with the "not found" that asked for it.
		cerr := c.s.e.CreateTopic(topic)
		if cerr == nil {
			c.s.opts.Logger.Info("topic created", "topic", topic, "remote", remoteName(c.nc), "by", "auto-create on produce")
		}
		if cerr == nil || isExists(cerr) {
			p, err = enq(c.pollCtx, topic, req.Batch)
		} else {
			err = cerr
		}
	}
	return enqueued{pending: p, topic: topic, count: countOf(req.Batch), err: err, waiters: waiters}
}

// produce awaits a queued produce and answers it.
//
// The request's duration (from began) goes to the Observer before the
// answer is written, so a client that has its answer finds the produce in
// the metrics.
func (c *conn) produce(h netproto.Header, q enqueued, began time.Time) bool {
	if q.bad {
		return c.decodeFailed(h, q.err)
	}
	base, err := uint64(0), q.err
	if err == nil {
		base, err = q.pending.Wait()
	}
	if o := c.s.opts.Observer; o != nil {
		o.ObserveRequest(h.Opcode, time.Since(began))
	}
	if err != nil {
		if c.s.produceFailed(q.topic, err) {
			// A full disk: logged once per episode, not per produce.
			e, _ := c.s.publicError(err)
			return c.writeError(h.Opcode, h.RequestID, e)
		}
		return c.replyError(h, err)
	}
	c.s.stored(q.topic)
	resp := netproto.ProduceResponse{BaseOffset: base, Count: q.count}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	f, start := netproto.BeginFrame(c.wbuf[:0], respHeader(h))
	c.wbuf = netproto.EndFrame(resp.AppendTo(f), start)
	return c.writeLocked(c.wbuf)
}

// answerConsume answers a Consume or a ConsumeNext whose offset is known
// (prepareConsume) and closes its link with where the answer ended; it
// returns the ConsumeNext queued behind it (more), resolved, to answer
// next. With wait false (the reader goroutine), a long poll that finds
// nothing to send answers nothing and reports waits: the reader, which
// answers consumes that need no wait itself, then hands it to
// handleConsume.
func (c *conn) answerConsume(job *consumeJob, wait bool) (ok, waits bool, next consumeJob, more bool) {
	h, cc := job.h, &job.cc
	req := &cc.req
	var end uint64
	var err error
	expired := false
	defer func() {
		if !waits {
			next, more = c.links.answer(cc.link, h.RequestID, linkResult{next: end, err: err, expired: expired})
		}
	}()
	switch {
	case cc.bad != nil:
		err = cc.bad
		return c.decodeFailed(h, err), false, next, more
	case cc.fail != nil:
		err = cc.fail
		return c.writeError(h.Opcode, h.RequestID, cc.fail), false, next, more
	case cc.prevErr != nil:
		err = cc.prevErr
		return c.replyError(h, err), false, next, more
	}
	// A response never exceeds MaxBody, whatever MaxConsumeBytes says.
	maxBytes := min(int64(c.s.opts.MaxConsumeBytes), int64(c.s.opts.MaxBody)-netproto.ConsumeResponseFixedSize)
	if req.MaxBytes > 0 && int64(req.MaxBytes) < maxBytes {
		maxBytes = int64(req.MaxBytes)
	}
	limit := uint64(req.Limit)
	if limit == 0 {
		limit = math.MaxUint64 // no message limit
	}
	topic := c.topicName(req.Topic)
	if err = c.authorize(auth.Consume, topic); err != nil {
		return c.replyError(h, err), false, next, more
	}
	if !wait { // the reader goroutine: it may have read this ahead
		if st := c.takeAhead(topic, req.Offset, limit, maxBytes); st != nil {
			end = netproto.NextOffset(req.Offset, req.Limit, st.res.Next())
			ok := c.writeConsume(h, st)
			if ok {
				c.readNext(topic, req.Offset, limit, maxBytes, st)
			}
			putState(st)
			return ok, false, next, more
		}
	}
	st := getState()
	defer putState(st)
	res := &st.res
	err = c.s.e.Read(topic, req.Offset, limit, maxBytes, res)
	if err == nil && len(res.Chunks) == 0 && req.MaxWaitMillis > 0 {
		if !wait {
			return true, true, next, more
		}
		wait := min(time.Duration(req.MaxWaitMillis)*time.Millisecond, c.s.opts.MaxWait)
		ctx, cancel := context.WithTimeout(c.pollCtx, wait)
		werr := c.s.e.Wait(ctx, topic, req.Offset)
		cancel()
		switch {
		case werr == nil:
			err = c.s.e.Read(topic, req.Offset, limit, maxBytes, res)
		case !isContextErr(werr):
			err = werr // the topic went away, or the engine closed
		default:
			expired = true
		}
		// A wait that expired, or ended at Shutdown, answers with what
		// is there: nothing.
	}
	if err == nil && res.Bytes > maxBytes && res.Bytes > int64(c.s.opts.MaxBody)-netproto.ConsumeResponseFixedSize {
		// One stored batch larger than this server's MaxBody (lowered
		// since it was written): it cannot be sent, and retrying will not
		// help.
		err = &netproto.Error{Code: netproto.CodeInternal, Message: "stored batch larger than the server's MaxBody"}
	}
	if err != nil {
		return c.replyError(h, err), false, next, more
	}
	end = netproto.NextOffset(req.Offset, req.Limit, res.Next())
	ok = c.writeConsume(h, st)
	if ok && !wait {
		c.readNext(topic, req.Offset, limit, maxBytes, st)
	}
	return ok, false, next, more
}

// watch registers a Watch, answers it, and pushes events until the
// connection ends or Shutdown; it releases its in-flight slot once the
// answer is sent, and owns body until then.
func (c *conn) watch(h netproto.Header, body []byte) {
	topics, ok := c.registerWatch(h, body)
	c.putBuf(body)
	if !ok {
		c.endAfterError()
	}
	if topics == nil {
		<-c.sem
		return
	}
	defer c.watches.Add(-1)
	defer c.watched.Add(-int32(len(topics)))
	ok = c.respond(h, &netproto.WatchResponse{}, nil)
	<-c.sem // a watch does not hold an in-flight slot while it waits
	if !ok {
		return
	}
	// One goroutine per topic sends an event whenever the topic's range
	// changes; the handler returns when they all have.
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
}

// registerWatch decodes a Watch and checks its topics. It returns the
// distinct topics, or nil after answering an error (ok is false when the
// body did not decode). On success it holds one of the connection's
// MaxWatches.
func (c *conn) registerWatch(h netproto.Header, body []byte) (topics []string, ok bool) {
	var req netproto.WatchRequest
	if err := req.Decode(body); err != nil {
		return nil, c.decodeFailed(h, err)
	}
	if c.watches.Add(1) > int32(c.s.opts.MaxWatches) {
		c.watches.Add(-1)
		c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeTooBusy, "too many watches on this connection"))
		return nil, true
	}
	limit := c.s.opts.MaxWatchedTopics
	if len(req.Topics) > limit {
		c.watches.Add(-1)
		c.writeError(h.Opcode, h.RequestID, tooManyTopics(len(req.Topics), limit))
		return nil, true
	}
	// Names must exist and are deduplicated, so a request repeating one
	// name cannot start a goroutine per repetition.
	seen := make(map[string]bool, min(len(req.Topics), 1024))
	topics = make([]string, 0, min(len(req.Topics), 1024))
	for _, b := range req.Topics {
		t := string(b)
		if seen[t] {
			continue
		}
		if err := c.authorize(auth.Consume, t); err != nil {
			c.watches.Add(-1)
			c.replyError(h, err)
			return nil, true
		}
		if _, _, err := c.s.e.Offsets(t); err != nil {
			c.watches.Add(-1)
			c.replyError(h, err)
			return nil, true
		}
		seen[t] = true
		topics = append(topics, t)
	}
	if n := c.watched.Add(int32(len(topics))); int(n) > limit {
		c.watched.Add(-int32(len(topics)))
		c.watches.Add(-1)
		c.writeError(h.Opcode, h.RequestID, tooManyTopics(int(n), limit))
		return nil, true
	}
	return topics, true
}

// tooManyTopics refuses a Watch past MaxWatchedTopics.
func tooManyTopics(n, limit int) *netproto.Error {
	return netproto.NewError(netproto.CodeTooBusy, "watch of "+strconv.Itoa(n)+
		" topics on this connection, the limit is "+strconv.Itoa(limit)+": watch fewer, or from another connection")
}

func (c *conn) watchTopic(h netproto.Header, topic string) {
	var lastStart, lastEnd uint64
	first := true
	for {
		start, end, err := c.s.e.Offsets(topic)
		if err != nil {
			if c.pollCtx.Err() == nil {
				c.replyError(h, err)
			}
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
		err = c.s.e.WaitChange(c.pollCtx, topic, start, end)
		if c.pollCtx.Err() != nil {
			return
		}
		if err != nil && !isContextErr(err) {
			c.replyError(h, err)
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
		err := c.authorize(auth.Admin, string(req.Topic))
		if err == nil {
			err = e.CreateTopic(string(req.Topic))
		}
		if err == nil {
			c.s.opts.Logger.Info("topic created", "topic", string(req.Topic), "remote", remoteName(c.nc))
		}
		return c.respond(h, &netproto.CreateTopicResponse{}, err)
	case netproto.OpDeleteTopic:
		var req netproto.DeleteTopicRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		err := c.authorize(auth.Admin, string(req.Topic))
		if err == nil {
			err = e.DeleteTopic(string(req.Topic))
		}
		if err == nil {
			c.s.opts.Logger.Info("topic deleted", "topic", string(req.Topic), "remote", remoteName(c.nc))
		}
		return c.respond(h, &netproto.DeleteTopicResponse{}, err)
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
		err := c.authorize(auth.Consume, string(req.Topic))
		if err == nil {
			resp.Start, resp.End, err = logsvc.LatestOffsets(e, string(req.Topic))
		}
		if err == nil && req.Time != 0 {
			resp.AtTime, err = e.OffsetAt(string(req.Topic), time.Unix(0, req.Time))
		}
		return c.respond(h, &resp, err)
	case netproto.OpTruncate:
		var req netproto.TruncateRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		if err := c.authorize(auth.Admin, string(req.Topic)); err != nil {
			return c.replyError(h, err)
		}
		resp, err := c.truncate(&req)
		return c.respond(h, &resp, err)
	case netproto.OpInitProducer:
		var req netproto.InitProducerRequest
		if err := req.Decode(body); err != nil {
			return c.decodeFailed(h, err)
		}
		if ip, ok := c.s.e.(interface{ IdempotentProducers() bool }); ok && !ip.IdempotentProducers() {
			// A log without idempotent producers (a cluster, for now):
			// clients fall back to producing without producer ids.
			break
		}
		return c.respond(h, &netproto.InitProducerResponse{ProducerID: c.s.e.NewProducerID()}, nil)
	case netproto.OpPlacement:
		return c.placement(h, body)
	}
	return c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeUnknownOpcode, h.Opcode.String()))
}

// truncate applies both cuts of a Truncate; the later one wins.
func (c *conn) truncate(req *netproto.TruncateRequest) (netproto.TruncateResponse, error) {
	topic := string(req.Topic)
	off := req.BeforeOffset
	if req.BeforeTime != 0 {
		at, err := c.s.e.OffsetAt(topic, time.Unix(0, req.BeforeTime))
		if err != nil {
			return netproto.TruncateResponse{}, err
		}
		off = max(off, at)
	}
	start, err := c.s.e.TruncateBefore(c.ctx, topic, off)
	return netproto.TruncateResponse{Start: start}, err
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
		if (re == nil || re.MatchString(n)) && c.mayList(n) {
			out = append(out, []byte(n))
		}
	}
	return out, nil
}

// isContextErr reports whether a wait ended by its context (expired, or
// cancelled at Shutdown) rather than by the engine. Checked on the error,
// not on ctx.Err(), which is always set once the wait's cancel ran.
func isContextErr(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

func isNotFound(err error) bool { return errors.Is(err, engine.ErrTopicNotFound) }
func isExists(err error) bool   { return errors.Is(err, engine.ErrTopicExists) }
