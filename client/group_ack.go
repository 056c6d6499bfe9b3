package client

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// maxAckRanges is the most ranges one ack request carries (the broker's
// limit per call).
const maxAckRanges = 4096

// ackTimeout bounds an ack, nack or extend sent without a context of the
// caller's: past the group's ack-wait the lease is gone anyway.
func (gc *GroupConsumer) ackTimeout() time.Duration {
	if gc.cfg.ackWait > 0 {
		return max(gc.cfg.ackWait, 5*time.Second)
	}
	return 30 * time.Second
}

// settle marks m acked or nacked; false when it was already.
func (gc *GroupConsumer) settle(m GroupMessage) bool {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if m.gen != gc.gen || m.idx >= len(gc.settled) {
		return true // a message of an earlier fetch: no state kept
	}
	if gc.settled[m.idx] {
		return false
	}
	gc.settled[m.idx] = true
	return true
}

// unsettle undoes settle after a request that failed.
func (gc *GroupConsumer) unsettle(m GroupMessage) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if m.gen == gc.gen && m.idx < len(gc.settled) {
		gc.settled[m.idx] = false
	}
}

func (gc *GroupConsumer) isSettled(m GroupMessage) bool {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return m.gen == gc.gen && m.idx < len(gc.settled) && gc.settled[m.idx]
}

func (m GroupMessage) ranges() []netproto.AckRange {
	return []netproto.AckRange{{First: m.Offset, Count: 1}}
}

// Ack acknowledges the message: it is done and will not be delivered
// again. Without GroupAckBatch it returns once the broker confirmed the ack
// durably; an error means it may come again (ErrNotLeased: its lease
// lapsed and it went to another member; ErrStaleMember: the broker forgot
// this member). With GroupAckBatch it only records the ack (see there).
// Acking twice is no error.
func (m GroupMessage) Ack() error {
	gc := m.gc
	if gc == nil {
		return errors.New("client: Ack of a message that was not delivered by a GroupConsumer")
	}
	if !gc.settle(m) {
		return nil
	}
	if gc.cfg.batchAcks > 0 {
		gc.addPending(m)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), gc.ackTimeout())
	defer cancel()
	err := gc.sendAck(ctx, netproto.OpGroupAck, m.memberID, m.epoch, m.ranges(), 0)
	if err != nil {
		gc.unsettle(m)
	}
	return err
}

// Nack gives the message back unprocessed: it is delivered again, to any
// member, after delay (0: at once). Past the group's max deliveries it goes
// to the dead-letter topic instead.
func (m GroupMessage) Nack(delay time.Duration) error {
	gc := m.gc
	if gc == nil {
		return errors.New("client: Nack of a message that was not delivered by a GroupConsumer")
	}
	if !gc.settle(m) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), gc.ackTimeout())
	defer cancel()
	ms := uint32(min(max(delay, 0)/time.Millisecond, math.MaxUint32))
	err := gc.sendAck(ctx, netproto.OpGroupNack, m.memberID, m.epoch, m.ranges(), ms)
	if err != nil {
		gc.unsettle(m)
	}
	return err
}

// InProgress extends the message's lease by the group's ack-wait from now:
// the work on it goes on, do not give it to another member.
func (m GroupMessage) InProgress() error {
	gc := m.gc
	if gc == nil {
		return errors.New("client: InProgress of a message that was not delivered by a GroupConsumer")
	}
	ctx, cancel := context.WithTimeout(context.Background(), gc.ackTimeout())
	defer cancel()
	return gc.sendAck(ctx, netproto.OpGroupExtend, m.memberID, m.epoch, m.ranges(), 0)
}

// sendAck sends an ack, extend (delay unused) or nack of ranges, in
// requests of at most maxAckRanges ranges.
func (gc *GroupConsumer) sendAck(ctx context.Context, op netproto.Opcode, id, epoch uint64, ranges []netproto.AckRange, delayMS uint32) error {
	for len(ranges) > 0 {
		part := ranges[:min(len(ranges), maxAckRanges)]
		ranges = ranges[len(part):]
		g, t := []byte(gc.group), []byte(gc.topic)
		var req netproto.Encoder
		if op == netproto.OpGroupNack {
			req = &netproto.GroupNackRequest{MemberID: id, MemberEpoch: epoch, DelayMillis: delayMS, Ranges: part, Group: g, Topic: t}
		} else {
			req = &netproto.GroupAckRequest{MemberID: id, MemberEpoch: epoch, Ranges: part, Group: g, Topic: t}
		}
		if err := gc.c.groupCall(ctx, gc.topic, op, req, &netproto.GroupAckResponse{}); err != nil {
			return err
		}
	}
	return nil
}

// addPending records a batched ack and sends the batch when it is full,
// or arms the linger timer for the first one.
func (gc *GroupConsumer) addPending(m GroupMessage) {
	gc.mu.Lock()
	if len(gc.pending) > 0 && (gc.pendID != m.memberID || gc.pendEp != m.epoch) {
		gc.flushLocked() // acks of another membership go in their own request
	}
	gc.pendID, gc.pendEp = m.memberID, m.epoch
	gc.pending = append(gc.pending, m.Offset)
	switch {
	case len(gc.pending) >= gc.cfg.batchAcks:
		gc.flushLocked()
	case len(gc.pending) == 1 && gc.timer == nil:
		gc.timer = time.AfterFunc(gc.cfg.batchLinger, func() { gc.flush(false) })
	}
	gc.mu.Unlock()
}

// flush sends the batched acks in the background, or with wait, and waits
// for every batch sent so far to be answered.
func (gc *GroupConsumer) flush(wait bool) {
	gc.mu.Lock()
	gc.flushLocked()
	gc.mu.Unlock()
	if wait {
		gc.flushes.Wait()
	}
}

// flushLocked starts sending the pending acks; gc.mu is held.
func (gc *GroupConsumer) flushLocked() {
	if gc.timer != nil {
		gc.timer.Stop()
		gc.timer = nil
	}
	if len(gc.pending) == 0 {
		return
	}
	offs := gc.pending
	gc.pending = nil
	id, epoch := gc.pendID, gc.pendEp
	gc.flushes.Add(1)
	go func() {
		defer gc.flushes.Done()
		ctx, cancel := context.WithTimeout(context.Background(), gc.ackTimeout())
		defer cancel()
		if err := gc.sendAck(ctx, netproto.OpGroupAck, id, epoch, toRanges(offs), 0); err != nil {
			gc.mu.Lock()
			gc.ackErr = errors.Join(gc.ackErr, err)
			gc.mu.Unlock()
		}
	}()
}

// toRanges sorts offsets and merges them into ascending, disjoint ranges.
func toRanges(offs []uint64) []netproto.AckRange {
	slices.Sort(offs)
	var out []netproto.AckRange
	for _, o := range offs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if o < last.End() {
				continue // a duplicate
			}
			if o == last.End() && last.Count < math.MaxUint32 {
				last.Count++
				continue
			}
		}
		out = append(out, netproto.AckRange{First: o, Count: 1})
	}
	return out
}

// takeAckErr returns and clears a batched ack's failure.
func (gc *GroupConsumer) takeAckErr() error {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	err := gc.ackErr
	gc.ackErr = nil
	return err
}

// endIteration sends the batched acks and waits for them.
func (gc *GroupConsumer) endIteration() { gc.flush(true) }

// Flush sends the batched acks (GroupAckBatch) and returns once the broker
// confirmed them, or with the error of one that failed.
func (gc *GroupConsumer) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		gc.flush(true)
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return gc.takeAckErr()
}

// Close sends the batched acks and leaves the group: the messages this
// member holds unacknowledged go to the other members at once. The
// consumer may join again with a later Messages call.
func (gc *GroupConsumer) Close(ctx context.Context) error {
	err := gc.Flush(ctx)
	gc.mu.Lock()
	id, epoch := gc.member.id, gc.member.epoch
	gc.member.id = 0
	gc.mu.Unlock()
	if id == 0 {
		return err
	}
	gc.joined = false
	req := netproto.GroupLeaveRequest{MemberID: id, MemberEpoch: epoch, Group: []byte(gc.group), Topic: []byte(gc.topic)}
	return errors.Join(err, gc.c.groupCall(ctx, gc.topic, netproto.OpGroupLeave, &req, &netproto.GroupLeaveResponse{}))
}
