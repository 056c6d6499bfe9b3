package server

import (
	"sync"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// ConsumeNext (netproto.ConsumeNextRequest) reads on from where the answer
// to an earlier consume of the same topic on the same connection ended. A
// connection keeps a link per recent consume: its request id, topic and,
// once answered, where its answer ended (or its error). The reader opens a
// link for each consume before it reads the next frame, so a ConsumeNext
// that follows its predecessor on the wire finds it; the answer closes it.
// A ConsumeNext whose predecessor is not answered yet waits for it, holding
// its in-flight slot as a long poll does.

// extraLinks is how many answered links a connection keeps beyond one per
// in-flight slot: a link not answered yet holds a slot, so it always finds
// room; answered ones are dropped oldest first.
const extraLinks = 8

// link is one consume a ConsumeNext may follow.
type link struct {
	id       uint64 // the consume's request id; 0: a free entry
	topic    string
	answered bool
	followed bool            // a ConsumeNext waits for it (wait is set)
	res      linkResult      // when answered
	wait     chan linkResult // capacity 1: the waiting ConsumeNext
}

// linkResult is where a consume's answer ended, or why it failed;
// expired: it was a long poll whose wait ran out with nothing to send.
type linkResult struct {
	next    uint64
	err     error
	expired bool
}

// links are a connection's recent consumes (see link). Guarded by mu.
type links struct {
	mu   sync.Mutex
	list []link
}

// open records consume id of topic, not answered yet, and returns its
// entry (-1: no room, which cannot happen while every unanswered link
// holds an in-flight slot; a ConsumeNext naming it is then refused).
func (ls *links) open(id uint64, topic string, size int) int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.list == nil {
		ls.list = make([]link, size)
	}
	at, free, oldest := -1, -1, -1
	for i := range ls.list {
		l := &ls.list[i]
		switch {
		case l.id == id && l.answered:
			// A request id used again (allowed once the request it named
			// was answered): the newer consume is the one a ConsumeNext
			// naming it follows. One not answered yet is kept: a
			// ConsumeNext may wait for it (a client that used its id again
			// too early gets one of the two followed).
			at = i
		case l.id == 0:
			if free < 0 {
				free = i
			}
		case l.answered && (oldest < 0 || l.id < ls.list[oldest].id):
			oldest = i
		}
	}
	if at < 0 {
		at = free
	}
	if at < 0 {
		at = oldest
	}
	if at >= 0 {
		ls.list[at] = link{id: id, topic: topic}
	}
	return at
}

// answer closes entry at of consume id with where its answer ended or why
// it failed, handing it to a ConsumeNext that waits for it.
func (ls *links) answer(at int, id uint64, r linkResult) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if at < 0 || at >= len(ls.list) {
		return
	}
	l := &ls.list[at]
	if l.id != id || l.answered {
		return
	}
	if l.followed {
		l.wait <- r
		*l = link{}
		return
	}
	l.answered, l.res = true, r
}

// follow finds the consume after of topic for a ConsumeNext: its result
// when it is answered, else a channel that gets it. ok is false when the
// connection holds no such consume (never sent, of another topic, already
// followed, or dropped).
func (ls *links) follow(after uint64, topic string) (r linkResult, wait chan linkResult, ok bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for i := range ls.list {
		l := &ls.list[i]
		if l.id != after || after == 0 {
			continue
		}
		if l.topic != topic || l.followed {
			return r, nil, false
		}
		if l.answered {
			r = l.res
			*l = link{}
			return r, nil, true
		}
		l.followed = true
		l.wait = make(chan linkResult, 1)
		return r, l.wait, true
	}
	return r, nil, false
}

// consumeCall is a consume (or a ConsumeNext, once its offset is known)
// on its way to an answer.
type consumeCall struct {
	req     netproto.ConsumeRequest
	link    int             // its entry in links
	wait    chan linkResult // a ConsumeNext whose predecessor is not answered yet
	fail    *netproto.Error // answer this and stop (a ConsumeNext with no predecessor)
	bad     error           // the body does not decode: the connection ends
	prevErr error           // the predecessor failed: so does this ConsumeNext
}

// prepareConsume decodes a Consume or ConsumeNext on the reader goroutine
// and opens its link; a ConsumeNext also finds its predecessor. The
// returned call's req.Topic aliases body.
func (c *conn) prepareConsume(h netproto.Header, body []byte) consumeCall {
	cc := consumeCall{link: -1} // no link until one is opened (a body that does not decode has none)
	if h.Opcode == netproto.OpConsume {
		if err := cc.req.Decode(body); err != nil {
			cc.bad = err
			return cc
		}
		cc.link = c.links.open(h.RequestID, c.topicName(cc.req.Topic), c.s.opts.MaxInFlight+extraLinks)
		return cc
	}
	var nx netproto.ConsumeNextRequest
	if err := nx.Decode(body); err != nil {
		cc.bad = err
		return cc
	}
	cc.req = netproto.ConsumeRequest{Topic: nx.Topic, Limit: nx.Limit, MaxBytes: nx.MaxBytes, MaxWaitMillis: nx.MaxWaitMillis}
	topic := c.topicName(nx.Topic)
	r, wait, ok := c.links.follow(nx.After, topic)
	if !ok {
		cc.link = -1
		cc.fail = netproto.NewError(netproto.CodeMalformed, "consume-next: the connection holds no consume of this topic with that request id to follow")
		return cc
	}
	cc.link = c.links.open(h.RequestID, topic, c.s.opts.MaxInFlight+extraLinks)
	if wait != nil {
		cc.wait = wait
		return cc
	}
	cc.resolve(r)
	return cc
}

// resolve sets a ConsumeNext's offset from its predecessor's result. One
// that follows a long poll whose wait ran out does not wait itself: a
// ConsumeNext left behind by a consumer that went away must not hold an
// in-flight slot for one wait after another; a consumer that stays sends
// its next one behind it, which waits again.
func (cc *consumeCall) resolve(r linkResult) {
	cc.req.Offset, cc.prevErr = r.next, r.err
	if r.expired {
		cc.req.MaxWaitMillis = 0
	}
}

// handleConsume answers a consume on its own goroutine (it waits: for data,
// or for the consume a ConsumeNext follows) and releases its in-flight
// slot; it owns body until it returns.
func (c *conn) handleConsume(h netproto.Header, body []byte, cc consumeCall, start time.Time) {
	defer c.handlers.Done()
	if cc.wait != nil {
		select {
		case r := <-cc.wait:
			cc.resolve(r)
		case <-c.pollCtx.Done():
			cc.fail = netproto.NewError(netproto.CodeShuttingDown, "the broker is stopping")
		}
	}
	ok, _ := c.answerConsume(h, &cc, true)
	if o := c.s.opts.Observer; o != nil {
		o.ObserveRequest(h.Opcode, time.Since(start))
	}
	c.putBuf(body)
	if !ok {
		c.endAfterError()
	}
	<-c.sem
}
