package server

import (
	"sync"
	"time"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/topicname"
)

// ConsumeNext (netproto.ConsumeNextRequest) reads on from where the answer
// to an earlier consume of the same topic on the same connection ended. A
// connection keeps a link per recent consume: its request id, topic and,
// once answered, where its answer ended (or its error). The reader opens a
// link for each consume before it reads the next frame, so a ConsumeNext
// that follows its predecessor on the wire finds it; the answer closes it.
// A ConsumeNext whose predecessor is not answered yet is queued on the
// predecessor's link, holding its in-flight slot as a long poll does: the
// goroutine that answers the predecessor goes on to answer it (no
// goroutine of its own, none woken).

// extraLinks is how many answered links a connection keeps beyond one per
// in-flight slot: a link not answered yet holds a slot, so it always finds
// room; answered ones are dropped oldest first.
const extraLinks = 8

// link is one consume a ConsumeNext may follow.
type link struct {
	id       uint64 // the consume's request id; 0: a free entry
	topic    string
	answered bool
	followed bool       // a ConsumeNext is queued on it (next)
	res      linkResult // when answered
	next     consumeJob // the queued ConsumeNext
}

// linkResult is where a consume's answer ended, or why it failed;
// expired: it was a long poll whose wait ran out with nothing to send.
type linkResult struct {
	next    uint64
	err     error
	expired bool
}

// consumeJob is a consume request read and not answered yet.
type consumeJob struct {
	h     netproto.Header
	body  []byte
	cc    consumeCall
	start time.Time
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
	return ls.openLocked(id, topic, size)
}

func (ls *links) openLocked(id uint64, topic string, size int) int {
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
			// ConsumeNext may be queued on it (a client that used its id
			// again too early gets one of the two followed).
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
// it failed. It returns the ConsumeNext queued on it, resolved, for the
// caller to answer next.
func (ls *links) answer(at int, id uint64, r linkResult) (next consumeJob, ok bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if at < 0 || at >= len(ls.list) {
		return next, false
	}
	l := &ls.list[at]
	if l.id != id || l.answered {
		return next, false
	}
	if l.followed {
		next = l.next
		*l = link{}
		next.cc.resolve(r)
		return next, true
	}
	l.answered, l.res = true, r
	return next, false
}

// follow finds the consume job.cc follows (after, of topic) and opens the
// ConsumeNext's own link (id). When that consume is answered, the job is
// resolved and returned (queued false); otherwise it is queued on it
// (queued true) and the one answering it answers the job. ok is false when
// the connection holds no such consume (never sent, of another topic,
// already followed, or dropped).
func (ls *links) follow(after uint64, topic string, id uint64, size int, job *consumeJob) (queued, ok bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for i := range ls.list {
		l := &ls.list[i]
		if l.id != after || after == 0 {
			continue
		}
		if l.topic != topic || l.followed {
			return false, false
		}
		r, answered := l.res, l.answered
		if answered {
			*l = link{}
		} else {
			l.followed = true // before openLocked: this entry is not reused
		}
		job.cc.link = ls.openLocked(id, topic, size)
		if answered {
			job.cc.resolve(r)
			return false, true
		}
		l.next = *job
		return true, true
	}
	return false, false
}

// consumeCall is a consume (or a ConsumeNext, once its offset is known)
// on its way to an answer.
type consumeCall struct {
	req     netproto.ConsumeRequest
	link    int             // its entry in links
	fail    *netproto.Error // answer this and stop (a ConsumeNext with no predecessor)
	bad     error           // the body does not decode: the connection ends
	prevErr error           // the predecessor failed: so does this ConsumeNext
}

// prepareConsume decodes a Consume or ConsumeNext on the reader goroutine
// and opens its link; a ConsumeNext also finds its predecessor, and is
// queued on it (queued: the reader is done with it) when that is not
// answered yet. The job's req.Topic aliases body.
func (c *conn) prepareConsume(h netproto.Header, body []byte, start time.Time) (job consumeJob, queued bool) {
	job = consumeJob{h: h, body: body, start: start}
	cc := &job.cc
	cc.link = -1 // no link until one is opened (a body that does not decode has none)
	size := c.s.opts.MaxInFlight + extraLinks
	if h.Opcode == netproto.OpConsume {
		if err := cc.req.Decode(body); err != nil {
			cc.bad, cc.link = err, -1
			return job, false
		}
		if len(cc.req.Topic) <= topicname.MaxLen { // a longer name is refused: kept for nobody to follow
			cc.link = c.links.open(h.RequestID, c.topicName(cc.req.Topic), size)
		}
		return job, false
	}
	var nx netproto.ConsumeNextRequest
	if err := nx.Decode(body); err != nil {
		cc.bad, cc.link = err, -1
		return job, false
	}
	cc.req = netproto.ConsumeRequest{Topic: nx.Topic, Limit: nx.Limit, MaxBytes: nx.MaxBytes, MaxWaitMillis: nx.MaxWaitMillis}
	queued, ok := false, false
	if len(nx.Topic) <= topicname.MaxLen { // no consume of a longer name is kept
		queued, ok = c.links.follow(nx.After, c.topicName(nx.Topic), h.RequestID, size, &job)
	}
	if !ok {
		cc.link = -1
		cc.fail = netproto.NewError(netproto.CodeMalformed, "consume-next: the connection holds no consume of this topic with that request id to follow")
	}
	return job, queued
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

// handleConsume answers a consume on its own goroutine (it may wait for
// data), then each ConsumeNext queued behind the one it answered, and
// releases their in-flight slots; it owns their bodies until it returns.
func (c *conn) handleConsume(job consumeJob) {
	defer c.handlers.Done()
	for {
		ok, _, next, more := c.answerConsume(&job, true)
		c.finishConsume(&job, ok)
		if !more {
			return
		}
		job = next
	}
}

// finishConsume does what follows a consume's answer: the Observer, the
// body, the connection's end after a bad body, the in-flight slot.
func (c *conn) finishConsume(job *consumeJob, ok bool) {
	if o := c.s.opts.Observer; o != nil {
		o.ObserveRequest(job.h.Opcode, time.Since(job.start))
	}
	c.putBuf(job.body)
	if !ok {
		c.endAfterError()
	}
	<-c.sem
}
