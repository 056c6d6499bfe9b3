package engine

import (
	"context"
	"fmt"

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
