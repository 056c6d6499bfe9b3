package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/record"
)

// A Node is the log service of a clustered broker: produces go through the
// topic's Raft group, reads come from this node's replica (which holds
// only committed batches), topic admin goes through the metadata group.
var _ logsvc.Service = (*Node)(nil)

func (n *Node) topic(name string) (*TopicInfo, error) {
	if err := n.errIfRemoved(); err != nil {
		return nil, err
	}
	n.tmu.RLock()
	ti := n.topics[name]
	n.tmu.RUnlock()
	if ti == nil && engine.ValidTopic(name) == nil {
		// Perhaps created through another node and not applied here yet:
		// a barrier through the metadata group brings the catalog up to
		// date (bounded: without a metadata leader the topic is unknown).
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n.metaCommand(ctx, kindSync, "")
		cancel()
		n.tmu.RLock()
		ti = n.topics[name]
		n.tmu.RUnlock()
	}
	if ti == nil {
		if err := engine.ValidTopic(name); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %q", engine.ErrTopicNotFound, name)
	}
	if !ti.hosts(n.cfg.NodeID) {
		return nil, n.notLeader(0, "cluster: topic %q is not replicated on node %d (replicas %v); connect to one of them", name, n.cfg.NodeID, ti.Replicas)
	}
	return ti, nil
}

// Enqueue queues a batch for the topic's Raft group. Any replica takes it:
// a follower's proposal is forwarded to the leader by Raft. Wait returns
// once the batch is committed (on a majority, each having synced its Raft
// log) and applied on this node. An idempotent batch (producer id set)
// whose sequence was already committed is answered with its first copy's
// offset (producers.go).
func (n *Node) Enqueue(ctx context.Context, topic string, batch []byte) (engine.Pending, error) {
	if err := ctx.Err(); err != nil {
		return engine.Pending{}, err
	}
	ti, err := n.topic(topic)
	if err != nil {
		return engine.Pending{}, err
	}
	if _, err := record.Verify(batch); err != nil {
		return engine.Pending{}, fmt.Errorf("%w: %v", engine.ErrInvalidBatch, err)
	}
	r := &request{batch: batch, done: make(chan struct{})}
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return engine.Pending{}, engine.ErrClosed
	}
	if n.failed != nil {
		n.mu.Unlock()
		return engine.Pending{}, unavailable("cluster: node failed: %v", n.failed)
	}
	n.propQ[ti.Group] = append(n.propQ[ti.Group], r)
	n.mu.Unlock()
	n.wake()
	return engine.NewPending(func() (uint64, error) {
		<-r.done
		return r.base, r.err
	}), nil
}

// EnqueueDirect is Enqueue: a replicated batch always waits for its
// group, so the Pending is never answered at once.
func (n *Node) EnqueueDirect(ctx context.Context, topic string, batch []byte) (engine.Pending, error) {
	return n.Enqueue(ctx, topic, batch)
}

// Read reads this replica. An offset past its end may be one the cluster
// acknowledged that this replica has not applied yet (a follower learns of
// a commit a moment after its leader acknowledged it, and only once the
// next leader commits after a leader died; a replica catching up from a
// snapshot later still): the read first passes a read barrier (Raft's
// ReadIndex, readindex.go: this replica applies everything committed when
// it asked), bounded by behindWait, so that a consumer moved to another
// replica is not told that a message it may read is past the end. Past
// the end after the barrier, it is out of range; without a barrier in
// time (no quorum), a retriable error.
func (n *Node) Read(topic string, offset, limit uint64, maxBytes int64, res *engine.ReadResult) error {
	ti, err := n.topic(topic)
	if err != nil {
		return err
	}
	err = n.e.Read(topic, offset, limit, maxBytes, res)
	if re := (*engine.RangeError)(nil); errors.As(err, &re) && offset > re.End {
		ctx, cancel := context.WithTimeout(context.Background(), n.behindWait())
		werr := n.readBarrier(ctx, ti)
		cancel()
		if werr != nil {
			return werr
		}
		err = n.e.Read(topic, offset, limit, maxBytes, res)
	}
	return err
}

// behindWait is how long a read past a replica's end waits for the
// replica: three election timeouts (a leader's death, the election, the
// next leader's first commit), at least 3 s.
func (n *Node) behindWait() time.Duration {
	return max(3*time.Duration(n.cfg.ElectionTicks)*n.cfg.TickInterval, 3*time.Second)
}

func (n *Node) Wait(ctx context.Context, topic string, offset uint64) error {
	if _, err := n.topic(topic); err != nil {
		return err
	}
	return n.e.Wait(ctx, topic, offset)
}

func (n *Node) WaitChange(ctx context.Context, topic string, start, end uint64) error {
	if _, err := n.topic(topic); err != nil {
		return err
	}
	return n.e.WaitChange(ctx, topic, start, end)
}

// Offsets returns this replica's range as it is: its end may lag an
// offset the cluster acknowledged (a follower, a new leader that has not
// applied its predecessor's last commits). Internal checks that can take
// that (a Kafka fetch's high watermark, a read-ahead's freshness) use it;
// a client asking for the range gets LatestOffsets.
func (n *Node) Offsets(topic string) (uint64, uint64, error) {
	if _, err := n.topic(topic); err != nil {
		return 0, 0, err
	}
	return n.e.Offsets(topic)
}

var _ logsvc.Linearizable = (*Node)(nil)

// LatestOffsets returns this replica's range once it passed a read
// barrier (Raft's ReadIndex, readindex.go): its end is at or past every
// offset the cluster acknowledged before the call, on a follower or a new
// leader that has not applied them yet too. Without a barrier within
// behindWait (no quorum reachable, this replica's apply stuck), a
// retriable error.
func (n *Node) LatestOffsets(topic string) (uint64, uint64, error) {
	ti, err := n.topic(topic)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.behindWait())
	err = n.readBarrier(ctx, ti)
	cancel()
	if err != nil {
		return 0, 0, err
	}
	return n.e.Offsets(topic)
}

func (n *Node) OffsetAt(topic string, tm time.Time) (uint64, error) {
	if _, err := n.topic(topic); err != nil {
		return 0, err
	}
	return n.e.OffsetAt(topic, tm)
}

// CreateTopic creates the topic through the metadata group: it returns
// once this node applied the creation (its replica, if it is one, exists).
func (n *Node) CreateTopic(name string) error {
	if err := n.errIfRemoved(); err != nil {
		return err
	}
	if err := engine.ValidTopic(name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ProposalTimeout+time.Second)
	defer cancel()
	return n.metaCommand(ctx, kindCreateTopic, name)
}

// DeleteTopic deletes the topic on every replica through the metadata
// group.
func (n *Node) DeleteTopic(name string) error {
	if err := n.errIfRemoved(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ProposalTimeout+time.Second)
	defer cancel()
	return n.metaCommand(ctx, kindDeleteTopic, name)
}

// Topics lists the catalog's topics that start with prefix, sorted.
func (n *Node) Topics(prefix string) []string {
	n.tmu.RLock()
	defer n.tmu.RUnlock()
	var out []string
	for name := range n.topics {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// TruncateBefore truncates this node's replica only (not replicated: each
// replica's retention is its own).
func (n *Node) TruncateBefore(ctx context.Context, topic string, offset uint64) (uint64, error) {
	if _, err := n.topic(topic); err != nil {
		return 0, err
	}
	return n.e.TruncateBefore(ctx, topic, offset)
}
