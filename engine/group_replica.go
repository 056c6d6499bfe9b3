package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/haraqa/haraqa/record"
)

// Replicated consumer groups (package cluster; DESIGN.md "Replication").
//
// With Options.GroupRecords set, a group-state record batch is not
// appended by the call that makes it: the function replicates it through
// the topic's log and every replica appends it to its own state log with
// AppendGroupRecords, led by the replicated entry's index (recLogIndex).
// The replica that coordinates the topic's groups (ReloadGroups with
// serving) runs the calls: the call that made a record applies it to the
// groups in memory once its Pending answers, as on a single node. Every
// other replica applies each record as it appends it, so its groups are
// the durable state of the coordinator's (committed offsets, acks,
// epochs, configuration); members, leases and delivery counts are the
// coordinator's alone, in memory.

// GroupRecordsFunc replicates a batch of group-state records of topic
// (Options.GroupRecords). The Pending answers once the batch is in this
// node's state log (AppendGroupRecords returned for it), or with an error
// when it will not be (the call then undoes what it marked).
type GroupRecordsFunc func(ctx context.Context, topic string, batch []byte) (Pending, error)

// AppendGroupRecords appends a replicated batch of group-state records to
// topic's state log, led by index (the replicated entry's). apply: apply
// the records to the groups in memory too (every replica but the
// proposing coordinator, whose call applies them). Entries at or below
// GroupLogIndex are in the log already: the caller skips them.
func (e *Engine) AppendGroupRecords(ctx context.Context, topic string, index uint64, batch []byte, apply bool) error {
	h, err := record.Verify(batch)
	if err != nil {
		return fmt.Errorf("%w: group-state batch: %v", ErrInvalidBatch, err)
	}
	msgs := [][]byte{encodeLogIndex(nil, index)}
	it := record.Messages(batch, &h)
	for m, ok := it.Next(); ok; m, ok = it.Next() {
		msgs = append(msgs, m)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%w: group-state batch: %v", ErrInvalidBatch, err)
	}
	out, err := record.AppendBatch(nil, msgs...)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadGroupRequest, err)
	}
	gs, err := e.groupSet(topic, true)
	if err != nil {
		return err
	}
	if _, err := e.appendTopic(ctx, gs.log, out); err != nil {
		return fmt.Errorf("engine: group state of topic %q: %w", topic, err)
	}
	gs.mu.Lock()
	gs.logIndex = max(gs.logIndex, index)
	if apply {
		for _, m := range msgs[1:] {
			r, err := decodeGroupRecord(m)
			if err != nil {
				e.opts.Logger.Error("engine: bad replicated group-state record skipped", "topic", topic, "index", index, "err", err)
				continue
			}
			gs.replayOne(r, nil)
		}
		gs.wake()
	}
	serving := gs.serving
	gs.mu.Unlock()
	gs.since.Add(int64(len(out)))
	if apply && !serving && gs.since.Load() >= compactAfter+2*gs.snapBytesLoad() && gs.compacting.CompareAndSwap(false, true) {
		// Not coordinating: nothing else writes this state log, and its
		// groups in memory are exactly the log's: compact here, in line.
		err := gs.compact(ctx)
		gs.compacting.Store(false)
		if err != nil {
			e.opts.Logger.Warn("engine: group state compaction failed", "topic", topic, "err", err)
		}
	}
	return nil
}

// GroupLogIndex returns the index of the last replicated entry in topic's
// state log (0: none).
func (e *Engine) GroupLogIndex(topic string) uint64 {
	e.gmu.RLock()
	gs := e.gsets[topic]
	e.gmu.RUnlock()
	if gs == nil {
		return 0
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return gs.logIndex
}

// ReloadGroups rebuilds topic's groups from its state log, dropping every
// member and lease (calls under way end with ErrClosed), and records
// whether this node now coordinates them (serving). Package cluster calls
// it when the node becomes the topic's coordinator, once it applied the
// whole log before its term, and when it stops being it.
func (e *Engine) ReloadGroups(topic string, serving bool) error {
	e.gmu.Lock()
	if e.gserving == nil {
		e.gserving = map[string]bool{}
	}
	if serving {
		e.gserving[topic] = true
	} else {
		delete(e.gserving, topic)
	}
	old := e.gsets[topic]
	e.gmu.Unlock()
	if old == nil {
		return nil // no groups yet: a set made later takes the mode
	}
	old.close() // waits for a compaction under way
	gs := newGroupSet(e, old.t, old.log)
	gs.serving = serving
	if err := gs.replay(); err != nil {
		return err
	}
	e.gmu.Lock()
	defer e.gmu.Unlock()
	if e.gsets[topic] == old {
		e.gsets[topic] = gs
	}
	return nil
}

// GroupSnapshot returns topic's group state as its state log holds it
// (package cluster puts it in the topic's Raft snapshot): uvarint-length
// prefixed group-state records, first a log index (GroupLogIndex), then a
// snapshot state per group; nil when the topic has no groups. ok is false
// while the state log is being compacted: ask again later. Call it where
// the replicated records are appended (it reads the log they go to).
func (e *Engine) GroupSnapshot(topic string) (snap []byte, ok bool, err error) {
	e.gmu.RLock()
	gs := e.gsets[topic]
	e.gmu.RUnlock()
	if gs == nil {
		return nil, true, nil
	}
	if !gs.compacting.CompareAndSwap(false, true) {
		return nil, false, nil
	}
	defer gs.compacting.Store(false)
	tmp := newGroupSet(e, gs.t, gs.log)
	if err := tmp.replay(); err != nil {
		return nil, false, err
	}
	recs := [][]byte{encodeLogIndex(nil, tmp.logIndex)}
	names := make([]string, 0, len(tmp.groups))
	for n, g := range tmp.groups {
		if g.ready && !g.deleted {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		recs = append(recs, encodeStateAs(nil, recSnapState, tmp.groups[n]))
	}
	for _, r := range recs {
		snap = binary.AppendUvarint(snap, uint64(len(r)))
		snap = append(snap, r...)
	}
	return snap, true, nil
}

// InstallGroupSnapshot replaces topic's group state with snap (from
// GroupSnapshot on another replica) unless its state log already holds
// the replicated entries snap covers: the snapshot is written at the base
// of a fresh segment of the state log, the segments below it removed, and
// the groups reloaded from it.
func (e *Engine) InstallGroupSnapshot(ctx context.Context, topic string, snap []byte) error {
	var recs [][]byte
	for len(snap) > 0 {
		n, k := binary.Uvarint(snap)
		if k <= 0 || n > uint64(len(snap)-k) {
			return fmt.Errorf("%w: group snapshot", errBadRecord)
		}
		recs = append(recs, snap[k:k+int(n)])
		snap = snap[k+int(n):]
	}
	if len(recs) == 0 {
		return nil
	}
	first, err := decodeGroupRecord(recs[0])
	if err != nil || first.typ != recLogIndex {
		return fmt.Errorf("%w: group snapshot without its log index", errBadRecord)
	}
	for _, r := range recs[1:] {
		if d, err := decodeGroupRecord(r); err != nil || d.typ != recSnapState {
			return fmt.Errorf("%w: group snapshot record", errBadRecord)
		}
	}
	if e.GroupLogIndex(topic) >= first.offset {
		return nil
	}
	gs, err := e.groupSet(topic, true)
	if err != nil {
		return err
	}
	for !gs.compacting.CompareAndSwap(false, true) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	err = gs.writeSnapshot(ctx, recs)
	gs.compacting.Store(false)
	if err != nil {
		return fmt.Errorf("engine: group state of topic %q: %w", topic, err)
	}
	gs.mu.Lock()
	serving := gs.serving
	gs.mu.Unlock()
	return e.ReloadGroups(topic, serving)
}

// writeSnapshot writes recs (snapshot states, a log index) as a snapshot
// at the base of a fresh segment of the state log and removes the
// segments below it.
func (gs *groupSet) writeSnapshot(ctx context.Context, recs [][]byte) error {
	if _, err := gs.log.submitCtl(ctx, &writerReq{op: opRoll}); err != nil {
		return err
	}
	var batches [][]byte
	msgs := [][]byte{{recSnapBegin}}
	size := 0
	for _, r := range recs {
		if size+len(r) > 1<<20 && len(msgs) > 0 {
			b, err := record.AppendBatch(nil, msgs...)
			if err != nil {
				return err
			}
			batches = append(batches, b)
			msgs, size = nil, 0
		}
		msgs = append(msgs, r)
		size += len(r)
	}
	b, err := record.AppendBatch(nil, append(msgs, []byte{recSnapEnd})...)
	if err != nil {
		return err
	}
	batches = append(batches, b)
	var first uint64
	for i, b := range batches {
		off, err := gs.e.appendTopic(ctx, gs.log, b)
		if err != nil {
			return err
		}
		if i == 0 {
			first = off
		}
	}
	if gs.e.opts.Fsync != FsyncAlways {
		if _, err := gs.log.submitCtl(ctx, &writerReq{op: opRoll}); err != nil { // a seal syncs
			return err
		}
	}
	_, err = gs.e.truncateTopic(ctx, gs.log, first)
	return err
}
