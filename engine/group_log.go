package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/haraqa/haraqa/record"
)

// compactAfter is how many bytes of state records (beyond twice the last
// snapshot) trigger a compaction of a group-state log.
var compactAfter int64 = 1 << 20

// loadGroups replays the group-state logs at Open. A log whose topic is
// gone (a crash between a topic's delete and its groups') is deleted; one
// whose topic was left offline is kept, unloaded.
func (e *Engine) loadGroups(present map[string]bool) error {
	e.mu.RLock()
	var logs []string
	for name := range e.topics {
		if isInternal(name) {
			logs = append(logs, name)
		}
	}
	e.mu.RUnlock()
	sort.Strings(logs)
	for _, name := range logs {
		topic := name[len(groupLogPrefix):]
		t, err := e.topic(topic)
		if err != nil {
			if !present[topic] {
				e.opts.Logger.Info("engine: deleting the group state of a deleted topic", "topic", topic)
				if err := e.deleteNamed(name); err != nil {
					return err
				}
			}
			continue
		}
		lt, err := e.anyTopic(name)
		if err != nil {
			return err
		}
		gs := newGroupSet(e, t, lt)
		if err := gs.replay(); err != nil {
			return err
		}
		if e.opts.GroupRecords == nil {
			// A replicated topic's offsets are fixed by its log: a
			// tail lost here is applied again, to the same offsets.
			gs.clampToEnd()
		}
		gs.serving = false
		if e.gsets == nil {
			e.gsets = map[string]*groupSet{}
		}
		e.gsets[topic] = gs
	}
	return nil
}

// replay rebuilds the groups from the state log, from its start.
func (gs *groupSet) replay() error {
	e := gs.e
	var res ReadResult
	defer res.Release()
	start, end := gs.log.segments()[0].Base(), gs.log.end.Load()
	var snap map[string]*cgroup // a snapshot being read
	var bytes int64
	for off := start; off < end; {
		err := e.readTopic(gs.log, off, end-off, 4<<20, &res)
		var ce *CorruptError
		if errors.As(err, &ce) {
			// Damaged on every copy: acks in it are lost (those messages
			// are delivered again), never invented. Said loudly.
			e.opts.Logger.Error("engine: group state damaged on every copy; skipping it", "topic", gs.t.name, "first", ce.First, "next", ce.Next)
			off = ce.Next
			continue
		}
		if err != nil {
			return fmt.Errorf("engine: replay group state of %q: %w", gs.t.name, err)
		}
		if len(res.Chunks) == 0 {
			break
		}
		for _, c := range res.Chunks {
			data := c.Data()
			bytes += int64(len(data))
			for len(data) > 0 {
				h, err := record.ParseHeader(data)
				if err != nil {
					return fmt.Errorf("engine: replay group state of %q: %w", gs.t.name, err)
				}
				batch := data[:h.Size()]
				data = data[h.Size():]
				off = max(off, h.NextOffset())
				it := record.Messages(batch, &h)
				for m, ok := it.Next(); ok; m, ok = it.Next() {
					r, err := decodeGroupRecord(m)
					if err != nil {
						e.opts.Logger.Error("engine: bad group-state record skipped", "topic", gs.t.name, "offset", h.BaseOffset, "err", err)
						continue
					}
					snap = gs.replayOne(r, snap)
				}
				if err := it.Err(); err != nil {
					e.opts.Logger.Error("engine: bad group-state batch skipped", "topic", gs.t.name, "offset", h.BaseOffset, "err", err)
				}
			}
		}
		res.Release()
	}
	gs.since.Store(bytes)
	return nil
}

// clampToEnd takes back, durably, what the groups hold done at or past
// the topic's end: acks of messages that a power loss took from the topic
// (under fsync=interval|never the topic and its state log are synced
// apart). Those offsets go to new messages, which no group may count as
// done. Each group changed gets a state record, made durable before Open
// returns (before any new message can take those offsets).
func (gs *groupSet) clampToEnd() {
	end := gs.t.end.Load()
	names := make([]string, 0, len(gs.groups))
	for n, g := range gs.groups {
		if g.committed > end || (len(g.acked) > 0 && g.acked[len(g.acked)-1].Next > end) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	ctx := context.Background()
	var err error
	for _, n := range names {
		g := gs.groups[n]
		gs.e.opts.Logger.Warn("engine: group held acks past the topic's end (lost in a power loss); taken back",
			"topic", gs.t.name, "group", n, "committed", g.committed, "end", end)
		g.committed = min(g.committed, end)
		g.acked = g.acked.trimAbove(end)
		g.delivered = g.committed
		if err == nil {
			var b []byte
			if b, err = record.AppendBatch(nil, encodeState(nil, g)); err == nil {
				_, err = gs.e.appendTopic(ctx, gs.log, b)
			}
		}
	}
	if err == nil && gs.e.opts.Fsync != FsyncAlways {
		_, err = gs.log.submitCtl(ctx, &writerReq{op: opRoll}) // a seal syncs
	}
	if err != nil {
		gs.e.opts.Logger.Error("engine: could not record groups taken back to the topic's end; a later restart may count new messages as done",
			"topic", gs.t.name, "err", err)
	}
}

// replayOne applies one record read back (the same effects as the live
// path's apply functions).
func (gs *groupSet) replayOne(r groupRecord, snap map[string]*cgroup) map[string]*cgroup {
	switch r.typ {
	case recSnapBegin:
		return map[string]*cgroup{}
	case recSnapEnd:
		if snap != nil {
			gs.groups = snap
		}
		return nil
	case recSnapState:
		if snap != nil {
			snap[r.name] = r.state
		}
		return snap
	case recState:
		gs.groups[r.name] = r.state
		return nil // a snapshot cut short before it is abandoned
	case recLogIndex:
		gs.logIndex = max(gs.logIndex, r.offset)
		return snap // part of a snapshot, or of a replicated batch
	}
	snap = nil // likewise: any other record ends an unfinished snapshot
	g := gs.groups[r.name]
	if g == nil {
		return snap
	}
	switch r.typ {
	case recAck:
		before := g.committed + g.acked.count()
		g.applyAck(r.ranges)
		if r.flags&ackDeadLettered != 0 {
			g.dead += g.committed + g.acked.count() - before
		}
	case recDelete:
		delete(gs.groups, r.name)
	case recEpoch:
		g.epoch = max(g.epoch, r.epoch)
	case recSkip:
		gs.applySkip(g, r.epoch)
	case recSeek:
		gs.applySeek(g, r.offset, r.epoch)
	}
	return snap
}

// maybeCompact starts a compaction when enough was written since the last
// snapshot.
func (gs *groupSet) maybeCompact() {
	if gs.since.Load() < compactAfter+2*gs.snapBytesLoad() || !gs.compacting.CompareAndSwap(false, true) {
		return
	}
	gs.mu.Lock()
	if gs.closed {
		gs.mu.Unlock()
		gs.compacting.Store(false)
		return
	}
	gs.compactWG.Add(1)
	gs.mu.Unlock()
	go func() {
		defer gs.compactWG.Done()
		defer gs.compacting.Store(false)
		if err := gs.compact(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
			gs.e.opts.Logger.Warn("engine: group state compaction failed", "topic", gs.t.name, "err", err)
		}
	}()
}

func (gs *groupSet) snapBytesLoad() int64 {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return gs.snapBytes
}

// compact writes a snapshot of every group at the base of a new segment
// of the state log and removes the segments below it. State changes wait
// meanwhile (stateMu), so the snapshot is exactly the durable state.
func (gs *groupSet) compact(ctx context.Context) error {
	gs.stateMu.Lock()
	defer gs.stateMu.Unlock()
	if _, err := gs.log.submitCtl(ctx, &writerReq{op: opRoll}); err != nil {
		return err
	}
	gs.mu.Lock()
	var batches [][]byte
	msgs := [][]byte{{recSnapBegin}}
	if gs.logIndex > 0 {
		msgs = append(msgs, encodeLogIndex(nil, gs.logIndex))
	}
	size := 0
	names := make([]string, 0, len(gs.groups))
	for n, g := range gs.groups {
		if g.ready && !g.deleted {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		m := encodeStateAs(nil, recSnapState, gs.groups[n])
		if size+len(m) > 1<<20 && len(msgs) > 0 {
			b, err := record.AppendBatch(nil, msgs...)
			if err != nil {
				gs.mu.Unlock()
				return err
			}
			batches = append(batches, b)
			msgs, size = nil, 0
		}
		msgs = append(msgs, m)
		size += len(m)
	}
	msgs = append(msgs, []byte{recSnapEnd})
	b, err := record.AppendBatch(nil, msgs...)
	gs.mu.Unlock()
	if err != nil {
		return err
	}
	batches = append(batches, b)
	var first uint64
	var total int64
	for i, b := range batches {
		total += int64(len(b))
		off, err := gs.e.appendTopic(ctx, gs.log, b)
		if err != nil {
			return err
		}
		if i == 0 {
			first = off
		}
	}
	if gs.e.opts.Fsync != FsyncAlways {
		// The appends above were not synced: seal the snapshot (a seal
		// syncs) before the synced records below it are removed, or a
		// power loss would leave neither.
		if _, err := gs.log.submitCtl(ctx, &writerReq{op: opRoll}); err != nil {
			return err
		}
	}
	if _, err := gs.e.truncateTopic(ctx, gs.log, first); err != nil {
		return err
	}
	gs.mu.Lock()
	gs.snapBytes = total
	gs.mu.Unlock()
	gs.since.Store(total)
	return nil
}
