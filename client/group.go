package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"sync"
	"time"

	"github.com/haraqa/haraqa/internal/retry"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// Errors of consumer groups (the sentinels of package netproto).
var (
	// ErrGroupNotFound: the group does not exist (it was deleted).
	ErrGroupNotFound = netproto.ErrGroupNotFound
	// ErrStaleMember: the broker no longer knows the member (it was
	// silent for the ack-wait, the broker restarted, the group was sought,
	// or another member took over an exclusive group). Its leases are gone:
	// the messages go to other members. A GroupConsumer joins again by
	// itself.
	ErrStaleMember = netproto.ErrStaleMember
	// ErrNotLeased: an ack, nack or extend of a message whose lease lapsed
	// (it went back for redelivery) or that was never delivered to this
	// member.
	ErrNotLeased = netproto.ErrNotLeased
	// ErrGroupLimit: a broker limit on groups (groups per topic, members,
	// messages in flight per member, ranges per request).
	ErrGroupLimit = netproto.ErrGroupLimit
	// ErrGroupConfigMismatch: the options given differ from the existing
	// group's configuration.
	ErrGroupConfigMismatch = netproto.ErrGroupConfigMismatch
)

// GroupConsumer is one member of a consumer group: a durable, named cursor
// on a topic whose members share its messages (DESIGN.md, "Consumer
// groups"). Messages leases messages from the broker and yields them; each
// one must be acknowledged (Ack), given back (Nack) or extended
// (InProgress) before the group's ack-wait runs out, or it goes to another
// member. Delivery is at least once: a message whose ack was not confirmed
// may come again, to this member or another.
//
// Messages runs in one goroutine; a GroupMessage's Ack, Nack and
// InProgress may be called from any goroutine.
type GroupConsumer struct {
	c            *Client
	group, topic string
	cfg          groupConfig

	// Iteration state: the goroutine running Messages only.
	joined   bool
	memberID uint64
	epoch    uint64
	buf      ConsumeBuffer
	body     []byte // the last fetch response's body; buf.raw aliases its batches
	fetched  netproto.GroupFetchResponse
	offs     []uint64 // offset of message i of the last fetch
	dels     []uint32 // its delivery count
	gen      uint64   // fetches made: a message's ack state belongs to one fetch

	mu      sync.Mutex
	settled []bool   // guarded by mu: message i of fetch gen was acked or nacked
	pending []uint64 // guarded by mu: batched acks not sent yet
	pendID  uint64   // guarded by mu: member id and epoch of the pending acks
	pendEp  uint64   // guarded by mu
	timer   *time.Timer
	ackErr  error // guarded by mu: a batched ack that failed, for Messages to yield
	flushes sync.WaitGroup
	member  struct{ id, epoch uint64 } // guarded by mu: for Close
}

// GroupMessage is a message leased to this member.
type GroupMessage struct {
	Message
	// Deliveries counts the deliveries of this message, this one included
	// (1 the first time; after a broker restart it starts again at 1).
	Deliveries uint32

	gc       *GroupConsumer
	memberID uint64
	epoch    uint64
	gen      uint64
	idx      int
	left     int
}

// Remaining returns how many messages of the same fetch Messages yields
// after this one: at 0 the next iteration fetches (and may wait). A
// consumer that acks in batches acks there, having finished its output.
func (m GroupMessage) Remaining() int { return m.left }

// NewGroupConsumer returns a member of group on topic. Nothing is sent
// until Messages runs: it then joins the group, creating it if it does not
// exist with the options given (GroupStart, GroupAckWait,
// GroupMaxDeliveries, GroupDeadLetter, GroupExclusive).
func NewGroupConsumer(c *Client, group, topic string, opts ...GroupOption) *GroupConsumer {
	return &GroupConsumer{c: c, group: group, topic: topic, cfg: applyGroupOptions(opts)}
}

// Messages iterates over the messages leased to this member until ctx ends
// (then the loop just stops) or the loop breaks; a later call goes on.
// At the end of the topic it long-polls (GroupWait), or ends with
// GroupUntilIdle. A message's Value
// aliases the consumer's buffer until the next iteration; copy it to keep
// it.
//
// Errors are yielded with a zero GroupMessage. A retriable one (the
// connection dropped, the broker is busy, a limit such as in-flight
// messages) is retried with backoff if the loop goes on, and so is a
// batched ack that failed (its messages come again). A member the broker
// no longer knows (ErrStaleMember, after a broker restart) joins again by
// itself, silently. Any other error (the group was deleted, the options do
// not match the group) ends the iteration after it is yielded.
//
// When the iteration ends, batched acks are sent and confirmed; the leases
// of messages not acked stay until the ack-wait (Close gives them back at
// once).
func (gc *GroupConsumer) Messages(ctx context.Context) iter.Seq2[GroupMessage, error] {
	return func(yield func(GroupMessage, error) bool) {
		defer gc.endIteration()
		failures, stale := 0, 0
		for ctx.Err() == nil {
			if err := gc.takeAckErr(); err != nil && !yield(GroupMessage{}, err) {
				return
			}
			var err error
			n, fetched := 0, gc.joined
			if !gc.joined {
				err = gc.join(ctx)
			} else {
				gc.flush(false)
				n, err = gc.fetch(ctx)
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, ErrStaleMember) && stale < 3 {
					gc.joined = false // the broker forgot us: join again
					stale++
					continue
				}
				if !yield(GroupMessage{}, err) || !groupRetriable(err) {
					return
				}
				failures++
				if !retry.Sleep(ctx, gc.c.backoff(failures)) {
					return
				}
				continue
			}
			failures = 0
			if n > 0 {
				stale = 0
			} else if fetched && gc.cfg.untilIdle {
				return
			}
			for i := range n {
				m := gc.message(i)
				if !yield(m, nil) {
					return
				}
				if gc.cfg.autoAck && !gc.isSettled(m) {
					if err := m.Ack(); err != nil && !yield(GroupMessage{}, err) {
						return
					}
				}
			}
		}
	}
}

// groupRetriable reports whether a group call that failed with err may
// succeed later: IsRetriable, plus the limits (in flight falls as acks
// arrive) and a stale member (rejoined).
func groupRetriable(err error) bool {
	return IsRetriable(err) || errors.Is(err, ErrGroupLimit) || errors.Is(err, ErrStaleMember) || errors.Is(err, ErrNotLeased)
}

// join creates the group if it is missing and joins it.
func (gc *GroupConsumer) join(ctx context.Context) error {
	if err := checkTopic(gc.topic); err != nil {
		return err
	}
	if err := checkTopic(gc.group); err != nil {
		return fmt.Errorf("group name: %w", err)
	}
	cfg := &gc.cfg
	req := netproto.GroupJoinRequest{
		Group: []byte(gc.group), Topic: []byte(gc.topic), DeadLetter: []byte(cfg.deadLetter),
		MemberName: []byte(cfg.name), StartKind: cfg.start.kind, StartValue: cfg.start.value,
		AckWaitMillis: uint32(min(cfg.ackWait/time.Millisecond, math.MaxUint32)),
		MaxDeliveries: cfg.maxDeliveries, Flags: netproto.JoinCreate,
	}
	if cfg.exclusive {
		req.Flags |= netproto.JoinExclusive
	}
	var resp netproto.GroupJoinResponse
	if err := gc.c.groupCall(ctx, gc.topic, netproto.OpGroupJoin, &req, &resp); err != nil {
		return err
	}
	gc.memberID, gc.epoch, gc.joined = resp.MemberID, resp.MemberEpoch, true
	gc.mu.Lock()
	gc.member.id, gc.member.epoch = resp.MemberID, resp.MemberEpoch
	gc.mu.Unlock()
	return nil
}

// groupCall sends a group request of topic whose response body decodes
// into resp, which must not alias the body (fixed-size and empty bodies;
// the others copy before the call is released).
func (c *Client) groupCall(ctx context.Context, topic string, op netproto.Opcode, req netproto.Encoder, resp netproto.Message) error {
	cl := getCall(op)
	defer putCall(cl)
	cl.head = req.AppendTo(cl.head)
	if err := c.groupTrip(ctx, topic, cl); err != nil {
		return err
	}
	return resp.Decode(cl.body)
}

// groupTrip sends a group request of topic and waits for its answer. A
// Client that follows leaders (a seed list) sends it to the topic's
// leader, which coordinates the topic's groups in a cluster (DESIGN.md
// "Replication"; another node answers a retriable error): a retriable
// failure fetches the placement again before the next call.
func (c *Client) groupTrip(ctx context.Context, topic string, cl *call) error {
	cn, err := c.connFor(ctx, topic)
	if err == nil {
		if err = cn.sendParts(cl, parts{nil}); err == nil {
			err = cn.wait(ctx, cl)
		}
	}
	if err != nil && ctx.Err() == nil && IsRetriable(err) {
		c.routeFailed()
	}
	return err
}

// fetch leases messages and indexes them; it returns how many.
func (gc *GroupConsumer) fetch(ctx context.Context) (int, error) {
	cfg := &gc.cfg
	req := netproto.GroupFetchRequest{
		MemberID: gc.memberID, MemberEpoch: gc.epoch, MaxMessages: cfg.fetchMax,
		MaxWaitMillis: uint32(min((cfg.wait+time.Millisecond-1)/time.Millisecond, math.MaxUint32)),
		Group:         []byte(gc.group), Topic: []byte(gc.topic),
	}
	gc.buf.msgs.reset()
	gc.offs, gc.dels = gc.offs[:0], gc.dels[:0]
	gc.gen++
	// The reader reads the response body straight into the consumer's
	// buffer (the last fetch's messages are no longer in use), which the
	// call gives back before it returns to the pool: a steady stream of
	// fetches reuses one buffer.
	cl := getCall(netproto.OpGroupFetch)
	cl.body = gc.body[:0]
	defer func() {
		cl.body = nil
		putCall(cl)
	}()
	cl.head = req.AppendTo(cl.head)
	if err := gc.c.groupTrip(ctx, gc.topic, cl); err != nil {
		return 0, err
	}
	gc.body = cl.body
	f := &gc.fetched
	if err := f.Decode(gc.body); err != nil {
		return 0, err
	}
	gc.epoch = f.MemberEpoch
	gc.mu.Lock()
	gc.member.epoch = f.MemberEpoch
	gc.mu.Unlock()
	gc.buf.raw = f.Batches
	if err := gc.index(); err != nil {
		gc.buf.msgs.reset()
		gc.offs, gc.dels = gc.offs[:0], gc.dels[:0]
		return 0, err
	}
	gc.mu.Lock()
	gc.settled = append(gc.settled[:0], make([]bool, len(gc.offs))...)
	gc.mu.Unlock()
	return len(gc.offs), nil
}

// index verifies the fetched batches and records the messages at the
// leased offsets. Batches come in offset order, each at most once, with
// gaps where no leased offset is; every leased offset must be in one.
func (gc *GroupConsumer) index() error {
	ix := indexer{buf: &gc.buf, topic: gc.topic, maxRaw: int(gc.c.cfg.maxBody)}
	ranges := gc.fetched.Ranges
	sc := record.NewScanner(gc.buf.raw)
	var prev uint64
	r := 0 // the first range not wholly indexed
	for first := true; sc.Next(); first = false {
		h := sc.Header()
		if !first && h.BaseOffset < prev {
			return corrupt(gc.topic, h.BaseOffset, fmt.Errorf("group fetch: batch at offset %d follows one that ends at %d", h.BaseOffset, prev))
		}
		prev = h.NextOffset()
		var raw []byte
		for ; r < len(ranges) && ranges[r].First < prev; r++ {
			lr := ranges[r]
			lo, hi := max(lr.First, h.BaseOffset), min(lr.End(), prev)
			if lo < hi {
				if raw == nil {
					var err error
					if raw, err = ix.payload(sc.Batch(), h); err != nil {
						return err
					}
				}
				before := len(gc.buf.msgs.refs)
				if err := ix.add(raw, h, lo, hi); err != nil {
					return err
				}
				if got := len(gc.buf.msgs.refs) - before; uint64(got) != hi-lo {
					return corrupt(gc.topic, lo, fmt.Errorf("group fetch: batch at %d holds %d of offsets %d..%d", h.BaseOffset, got, lo, hi-1))
				}
				for off := lo; off < hi; off++ {
					gc.offs = append(gc.offs, off)
					gc.dels = append(gc.dels, lr.Deliveries)
				}
			}
			if lr.End() > prev {
				break // the range goes on in a later batch
			}
		}
	}
	if err := sc.Err(); err != nil {
		return corrupt(gc.topic, prev, err)
	}
	var want uint64
	for _, lr := range ranges {
		want += uint64(lr.Count)
	}
	if uint64(len(gc.offs)) != want {
		return corrupt(gc.topic, prev, fmt.Errorf("group fetch: %d leased messages, %d in the batches sent", want, len(gc.offs)))
	}
	return nil
}

// message returns message i of the last fetch.
func (gc *GroupConsumer) message(i int) GroupMessage {
	msg := gc.buf.msgs.At(i)
	msg.Topic, msg.Offset = gc.topic, gc.offs[i]
	return GroupMessage{Message: msg, Deliveries: gc.dels[i], gc: gc, memberID: gc.memberID, epoch: gc.epoch, gen: gc.gen, idx: i, left: len(gc.offs) - i - 1}
}
