package server

import (
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// Reading ahead for large messages.
//
// A client that reads a topic of large messages one response at a time
// (client.Consumer) sends its next consume when it has read the previous
// response, and the reader goroutine would then read and verify the next
// response's batches before writing any of it: the socket idles while the
// broker hashes megabytes. Instead, once the reader has written a response
// of large messages that ends below the topic's end, and nothing else is
// waiting to be read, it reads and verifies the next response at once
// (the same topic, limit and byte budget, from where this one ended),
// while the client is still reading. The next consume that asks for
// exactly that is answered with it, without a second read.
//
// No batch is sent more than aheadFresh after it was verified (a few times
// what writing a 16 MiB response takes, the window a response verified
// whole before it is written has anyway): a response read ahead is used
// only that soon, and only while the topic still holds its offsets from
// the start (not deleted, truncated or trimmed by retention); otherwise it
// is released (a timer does that when no consume comes) and the consume
// reads afresh. A topic deleted and created again under the same name is
// told apart by its segments (ReadResult.Current), however soon.

const (
	aheadMinBytes = 1 << 20  // a response this large …
	aheadMsgBytes = 64 << 10 // … of messages this large on average is read ahead
)

// aheadFresh is the longest time between verifying a response read ahead
// and sending it (a variable for tests).
var aheadFresh = 20 * time.Millisecond

// readAhead is a response read and verified ahead of its consume.
type readAhead struct {
	st       *consumeState
	topic    string
	offset   uint64
	limit    uint64
	maxBytes int64
	at       time.Time // when its read began
	timer    *time.Timer
}

// takeAhead returns the response read ahead for a consume of topic from
// offset with limit and maxBytes, or nil; a response read ahead for
// anything else, or verified too long ago, is released. Reader goroutine.
func (c *conn) takeAhead(topic string, offset, limit uint64, maxBytes int64) *consumeState {
	a := c.ahead.Swap(nil)
	if a == nil {
		return nil
	}
	a.timer.Stop()
	if a.topic != topic || a.offset != offset || a.limit != limit || a.maxBytes != maxBytes || time.Since(a.at) > aheadFresh {
		putState(a.st)
		return nil
	}
	start, end, err := c.s.e.Offsets(topic)
	if err != nil || start > offset || end < a.st.res.Next() || !a.st.res.Current() {
		putState(a.st) // deleted (and made again), truncated, trimmed or repaired meanwhile: read afresh
		return nil
	}
	a.st.res.Start, a.st.res.End = start, max(end, a.st.res.End)
	c.aheadUsed.Add(1)
	return a.st
}

// dropAhead releases the response read ahead, if any.
func (c *conn) dropAhead() {
	if a := c.ahead.Swap(nil); a != nil {
		a.timer.Stop()
		putState(a.st)
	}
}

// readNext reads ahead after the reader goroutine wrote res, the answer to
// a consume of topic from offset, if res is a large response of large
// messages that ends below the topic's end and no request is buffered.
func (c *conn) readNext(topic string, offset, limit uint64, maxBytes int64, res *consumeState) {
	r := &res.res
	if len(r.Chunks) == 0 || r.Bytes < aheadMinBytes || c.br.Buffered() != 0 {
		return
	}
	next := r.Next()
	if next >= r.End || next <= offset || r.Bytes/int64(next-offset) < aheadMsgBytes {
		return
	}
	st := getState()
	at := time.Now()
	err := c.s.e.Read(topic, next, limit, maxBytes, &st.res)
	if err != nil || len(st.res.Chunks) == 0 || st.res.Bytes > int64(c.s.opts.MaxBody)-netproto.ConsumeResponseFixedSize {
		putState(st) // answered by a fresh read, with its error
		return
	}
	a := &readAhead{st: st, topic: topic, offset: next, limit: limit, maxBytes: maxBytes, at: at}
	c.ahead.Store(a)
	// Set after the Store, so that a timer that fires at once finds it;
	// only this goroutine reads a.timer.
	a.timer = time.AfterFunc(aheadFresh, func() {
		if c.ahead.CompareAndSwap(a, nil) {
			putState(a.st)
		}
	})
}
