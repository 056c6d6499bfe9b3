package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/haraqa/haraqa/record"
)

// DescribeGroup returns a group's state (see logsvc.Groups). A group that
// retention passed is moved to the topic's start first.
func (e *Engine) DescribeGroup(topic, group string) (GroupInfo, error) {
	gs, err := e.groupSet(topic, false)
	if err != nil {
		return GroupInfo{}, err
	}
	if err := gs.catchUp(group); err != nil {
		return GroupInfo{}, err
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, err := gs.lookup(group)
	if err != nil {
		return GroupInfo{}, err
	}
	return gs.info(g), nil
}

// ListGroups describes every group of a topic, sorted by name.
func (e *Engine) ListGroups(topic string) ([]GroupInfo, error) {
	gs, err := e.groupSet(topic, false)
	if errors.Is(err, ErrGroupNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	gs.mu.Lock()
	var names []string
	for n, g := range gs.groups {
		if g.ready && !g.deleted {
			names = append(names, n)
		}
	}
	gs.mu.Unlock()
	sort.Strings(names)
	out := make([]GroupInfo, 0, len(names))
	for _, n := range names {
		if info, err := e.DescribeGroup(topic, n); err == nil {
			out = append(out, info)
		}
	}
	return out, nil
}

// catchUp moves a group that retention passed.
func (gs *groupSet) catchUp(group string) error {
	gs.mu.Lock()
	g, err := gs.lookup(group)
	behind := err == nil && g.committed < gs.t.segments()[0].Base()
	gs.mu.Unlock()
	if !behind {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return gs.skipTo(ctx, group, gs.t.segments()[0].Base())
}

func (gs *groupSet) info(g *cgroup) GroupInfo {
	now := gs.now()
	gs.sweep(g, now)
	start, end := gs.t.segments()[0].Base(), gs.t.end.Load()
	info := GroupInfo{Topic: gs.t.name, Name: g.name, Config: g.cfg, Epoch: g.epoch, Committed: g.committed,
		AckedAbove: g.acked.count(), Start: start, End: end, InFlight: g.inFlight, Delivered: g.delivered,
		Redeliveries: g.redeliv, Expired: g.expired, DeadLettered: g.dead, Skipped: g.skipped}
	if end > g.committed {
		info.Lag = end - g.committed - min(g.acked.countBelow(end), end-g.committed)
	}
	for _, m := range g.members {
		info.Members = append(info.Members, MemberInfo{ID: m.id, Name: m.name, InFlight: m.inFlight,
			LastSeen: time.Unix(0, m.lastSeen), Holder: g.holder == m})
	}
	sort.Slice(info.Members, func(i, j int) bool { return info.Members[i].ID < info.Members[j].ID })
	return info
}

// SeekGroup moves a group to pos (see logsvc.Groups).
func (e *Engine) SeekGroup(ctx context.Context, topic, group string, pos StartPosition) (uint64, error) {
	if pos.Kind > StartTime {
		return 0, fmt.Errorf("%w: start kind %d", ErrBadGroupRequest, pos.Kind)
	}
	gs, err := e.groupSet(topic, false)
	if err != nil {
		return 0, err
	}
	gs.stateMu.RLock()
	defer gs.stateMu.RUnlock()
	gs.mu.Lock()
	g, err := gs.lookup(group)
	if err != nil {
		gs.mu.Unlock()
		return 0, err
	}
	off, err := e.startOffset(gs.t, pos)
	if err != nil {
		gs.mu.Unlock()
		return 0, err
	}
	epoch := g.epoch + 1
	tk, err := gs.enqueue(ctx, encodeSeek(nil, group, off, epoch))
	if err != nil {
		gs.mu.Unlock()
		return 0, err
	}
	g.epoch = epoch // acks queued from now on under the old epoch are refused
	gs.dropAll(g)
	gs.mu.Unlock()
	err = gs.finish(tk, func(err error) {
		if err == nil && !g.deleted {
			gs.applySeek(g, off, epoch)
		} else if err != nil {
			// The leases were dropped: deliver again whatever is not done.
			g.delivered = g.committed
		}
		gs.wake()
	})
	return off, err
}

func (gs *groupSet) applySeek(g *cgroup, off, epoch uint64) {
	gs.moveTo(g, off, false)
	g.epoch = max(g.epoch, epoch)
	g.holder = nil
}

// DeleteGroup deletes a group (see logsvc.Groups).
func (e *Engine) DeleteGroup(ctx context.Context, topic, group string) error {
	gs, err := e.groupSet(topic, false)
	if err != nil {
		return err
	}
	gs.stateMu.RLock()
	defer gs.stateMu.RUnlock()
	gs.mu.Lock()
	g, err := gs.lookup(group)
	if err != nil {
		gs.mu.Unlock()
		return err
	}
	tk, err := gs.enqueue(ctx, encodeDelete(nil, group))
	if err != nil {
		gs.mu.Unlock()
		return err
	}
	g.deleted = true
	gs.dropAll(g)
	gs.mu.Unlock()
	return gs.finish(tk, func(err error) {
		if err != nil {
			// Not deleted; its leases were dropped: deliver again what is
			// not done.
			g.deleted = false
			g.delivered = g.committed
			gs.wake()
			return
		}
		if gs.groups[group] == g {
			delete(gs.groups, group)
		}
		gs.wake()
	})
}

// deadLetter appends the messages of dl (leases held for it) to the
// group's dead-letter topic, then records them done. On failure they go
// back for another try in a second.
func (gs *groupSet) deadLetter(ctx context.Context, dl []*lease) {
	e := gs.e
	for _, l := range dl {
		g := l.g
		var err error
		if dlq := g.cfg.DeadLetterTopic; dlq != "" {
			err = e.copyRange(ctx, gs.t.name, dlq, l.OffsetRange)
		}
		if err != nil {
			e.opts.Logger.Warn("engine: dead-lettering failed; retried", "topic", gs.t.name, "group", g.name,
				"first", l.First, "next", l.Next, "err", err)
			gs.mu.Lock()
			gs.ackDone(g, []*lease{l}, nil, err, true)
			gs.mu.Unlock()
			continue
		}
		gs.stateMu.RLock()
		gs.mu.Lock()
		if l.gone {
			gs.mu.Unlock()
			gs.stateMu.RUnlock()
			continue
		}
		rs := []OffsetRange{l.OffsetRange}
		tk, err := gs.enqueue(ctx, encodeAck(nil, g.name, ackDeadLettered, rs))
		if err != nil {
			gs.ackDone(g, []*lease{l}, nil, err, true)
			gs.mu.Unlock()
			gs.stateMu.RUnlock()
			continue
		}
		gs.mu.Unlock()
		gs.finish(tk, func(err error) { gs.ackDone(g, []*lease{l}, rs, err, true) })
		gs.stateMu.RUnlock()
	}
}

// copyRange appends the messages [r.First, r.Next) of topic to dst,
// keeping keys, headers and timestamps, in batches of at most 1 MiB.
func (e *Engine) copyRange(ctx context.Context, topic, dst string, r OffsetRange) error {
	var res ReadResult
	defer res.Release()
	var b record.Builder
	var raw []byte
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		batch, err := b.Finish()
		if err != nil {
			return err
		}
		if e.opts.DeadLetterAppend != nil {
			_, err = e.opts.DeadLetterAppend(ctx, dst, batch)
		} else {
			_, err = e.Append(ctx, dst, batch)
		}
		b.Reset()
		return err
	}
	for off := r.First; off < r.Next; {
		if err := e.Read(topic, off, r.Next-off, 4<<20, &res); err != nil {
			return err
		}
		if len(res.Chunks) == 0 {
			return fmt.Errorf("engine: dead-letter read of %q at %d found nothing", topic, off)
		}
		for _, c := range res.Chunks {
			data := c.Data()
			for len(data) > 0 {
				h, err := record.ParseHeader(data)
				if err != nil {
					return err
				}
				batch := data[:h.Size()]
				data = data[h.Size():]
				it := record.Messages(batch, &h)
				if h.Codec() != record.CodecNone {
					if raw, err = record.Decompress(raw[:0], batch, &h, e.opts.MaxBatchBytes); err != nil {
						return err
					}
					it.ResetPayload(raw, &h)
				}
				o := h.BaseOffset
				for m, ok := it.NextMessage(); ok; m, ok = it.NextMessage() {
					if o >= off && o < r.Next {
						var hdrs []record.MessageHeader
						hi := m.Headers()
						for k, v, ok := hi.Next(); ok; k, v, ok = hi.Next() {
							hdrs = append(hdrs, record.MessageHeader{Key: string(k), Value: v})
						}
						if err := b.AddMessage(m.Timestamp, m.Key, m.Value, hdrs); err != nil {
							return err
						}
						if b.Size() >= 1<<20 {
							if err := flush(); err != nil {
								return err
							}
						}
					}
					o++
				}
				if err := it.Err(); err != nil {
					return err
				}
				off = max(off, h.NextOffset())
			}
		}
		res.Release()
	}
	return flush()
}
