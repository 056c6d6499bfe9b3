package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// Consumer groups in a cluster (DESIGN.md "Replication").
//
// The leader of a topic's Raft group coordinates its consumer groups: it
// runs every group call on its engine, as a single node does, once it
// applied the whole log before its term (the first entry of its own term,
// Raft's empty entry, is where it starts). Every durable group change
// (creation and configuration, acks, epochs, seeks, skips, deletion) is a
// batch of the engine's group-state records that the engine hands to the
// node (engine.Options.GroupRecords, through a Relay): the node proposes
// it as a kindGroup entry carrying the term in which it coordinates, and
// every replica appends it to its own state log at apply. An entry whose
// term is not the term of the proposer's coordination (a deposed leader's
// change, forwarded to the next leader) is skipped by every replica and
// fails the call: only the coordinator of a term changes the groups in it.
// Members, leases and delivery counts stay in the coordinator's memory.

// groupServe is a topic group's coordination state.
type groupServe struct {
	lead   atomic.Uint64 // the term in which this node leads the group (0: it does not)
	serve  atomic.Uint64 // the term in which it coordinates the groups (0: it does not)
	known  bool          // registered in Node.svs (loop)
	engine uint64        // the apply goroutine's: the term the engine serves in (0: passive)
	// pending: this node's group proposals not applied yet (id → struct{}),
	// answered when the node stops coordinating, so that the engine's
	// calls waiting for them let go of their group set.
	pending sync.Map
}

// A Relay hands the engine's group-state records to the node. The broker
// opens the engine (engine.Options.GroupRecords: Relay.GroupRecords)
// before the node (Config.Relay).
type Relay struct{ n atomic.Pointer[Node] }

// GroupRecords is the engine's engine.GroupRecordsFunc.
func (r *Relay) GroupRecords(ctx context.Context, topic string, batch []byte) (engine.Pending, error) {
	n := r.n.Load()
	if n == nil {
		return engine.Pending{}, unavailable("cluster: node not started")
	}
	return n.groupRecords(ctx, topic, batch)
}

// DeadLetterAppend is the engine's engine.Options.DeadLetterAppend: the
// copy of a dead-lettered message goes through the dead-letter topic's own
// Raft group (led by this node or another) and is answered once committed
// and applied here, before the engine records the dead-letter ack.
func (r *Relay) DeadLetterAppend(ctx context.Context, topic string, batch []byte) (uint64, error) {
	n := r.n.Load()
	if n == nil {
		return 0, unavailable("cluster: node not started")
	}
	p, err := n.Enqueue(ctx, topic, batch)
	if err != nil {
		return 0, err
	}
	return p.Wait()
}

// retriable is a retriable storage error for every front end: the binary
// protocol's Storage code, the engine's ErrStorage for HTTP and Kafka.
func retriable(msg string) error {
	return fmt.Errorf("%w: %w", engine.ErrStorage, netproto.NewError(netproto.CodeStorage, msg))
}

var errMoved = retriable("cluster: the topic's leadership moved before the group change was committed; nothing changed")

var errDeposed = retriable("cluster: the topic's leadership moved while the group change was being committed; it may or may not be done")

// noteLeadership records whether this node leads g, in which term (loop).
func (n *Node) noteLeadership(g *group) {
	if g.topic == "" {
		return
	}
	sv := &g.sv
	if !sv.known {
		sv.known = true
		n.svs.Store(g.id, sv)
	}
	st := g.rn.BasicStatus()
	var lt uint64
	if st.RaftState == raft.StateLeader {
		lt = st.GetTerm()
	}
	if sv.lead.Swap(lt) == lt {
		return
	}
	if s := sv.serve.Load(); s != 0 && s != lt {
		sv.serve.Store(0) // refuse group calls at once; the apply goroutine reloads
	}
	select {
	case g.asig <- struct{}{}:
	default:
	}
}

// coordinating reports whether this node coordinates the groups of ti.
func (n *Node) coordinating(ti *TopicInfo) (uint64, bool) {
	v, ok := n.svs.Load(ti.Group)
	if !ok {
		return 0, false
	}
	t := v.(*groupServe).serve.Load()
	return t, t != 0
}

func (n *Node) notCoordinator(ti *TopicInfo) error {
	n.tmu.RLock()
	lead := n.leads[ti.Name]
	n.tmu.RUnlock()
	who := "no leader is known yet"
	if lead != 0 {
		who = fmt.Sprintf("node %d (cluster address %s) leads it", lead, n.cfg.Peers[lead])
	}
	return n.notLeader(lead, "cluster: node %d does not coordinate the consumer groups of topic %q (the topic's leader does): %s; connect to it", n.cfg.NodeID, ti.Name, who)
}

// groupRecords proposes a batch of group-state records of topic (the
// engine's call, under its group lock: it only queues).
func (n *Node) groupRecords(ctx context.Context, topic string, batch []byte) (engine.Pending, error) {
	n.tmu.RLock()
	ti := n.topics[topic]
	n.tmu.RUnlock()
	if ti == nil {
		return engine.Pending{}, fmt.Errorf("%w: %q", engine.ErrTopicNotFound, topic)
	}
	v, _ := n.svs.Load(ti.Group)
	sv, _ := v.(*groupServe)
	var term uint64
	if sv != nil {
		term = sv.serve.Load()
	}
	if term == 0 {
		return engine.Pending{}, n.notCoordinator(ti)
	}
	id := n.nextID.Add(1)
	data := make([]byte, 0, 33+len(batch))
	data = append(data, kindGroup)
	data = binary.LittleEndian.AppendUint64(data, n.cfg.NodeID)
	data = binary.LittleEndian.AppendUint64(data, id)
	data = binary.LittleEndian.AppendUint64(data, term)
	data = binary.LittleEndian.AppendUint32(data, 1)
	data = binary.LittleEndian.AppendUint32(data, uint32(len(batch)))
	data = append(data, batch...)
	p := &proposal{done: make(chan struct{}), deadline: time.Now().Add(n.cfg.ProposalTimeout)}
	n.wmu.Lock()
	n.waiters[id] = p
	n.wmu.Unlock()
	sv.pending.Store(id, struct{}{})
	n.mu.Lock()
	if n.stopped || n.failed != nil {
		n.mu.Unlock()
		n.finish(id, nil, engine.ErrClosed)
		return engine.Pending{}, engine.ErrClosed
	}
	n.groupQ = append(n.groupQ, held{ti.Group, id, data})
	n.mu.Unlock()
	n.wake()
	return engine.NewPending(func() (uint64, error) {
		<-p.done
		return 0, p.err
	}), nil
}

// proposeGroup proposes a group entry (loop). Unlike a produce it is never
// held or proposed again: it is valid only in the term it names.
func (n *Node) proposeGroup(h held) {
	g := n.groups[h.gid]
	if g == nil {
		n.finish(h.id, nil, fmt.Errorf("%w: group %d is gone", engine.ErrTopicNotFound, h.gid))
		return
	}
	n.touched[h.gid] = g
	if err := g.rn.Propose(h.data); err != nil {
		n.finish(h.id, nil, errMoved)
	}
}

// takeWaiter removes and returns proposal id's waiter (nil: none, or it
// gave up).
func (n *Node) takeWaiter(id uint64) *proposal {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	p := n.waiters[id]
	delete(n.waiters, id)
	return p
}

// syncGroups moves the engine's groups of g between coordinating and not
// (apply goroutine): before entry e (nil: between entries) is applied.
func (n *Node) syncGroups(g *group, e *pb.Entry) {
	sv := &g.sv
	want := sv.lead.Load()
	if sv.engine != 0 && sv.engine != want {
		sv.serve.Store(0)
		sv.pending.Range(func(k, _ any) bool {
			sv.pending.Delete(k)
			n.finish(k.(uint64), nil, errDeposed) // an entry of them that commits is applied as any other's
			return true
		})
		if err := n.e.ReloadGroups(g.topic, false); err != nil {
			n.log.Error("cluster: reloading a topic's consumer groups failed", "topic", g.topic, "err", err)
		}
		sv.engine = 0
	}
	// The first entry of this node's own term: every entry before it is
	// applied, so the state logs hold every change of the earlier terms.
	if want != 0 && e != nil && e.GetTerm() == want && sv.engine != want {
		if err := n.e.ReloadGroups(g.topic, true); err != nil {
			n.log.Error("cluster: loading a topic's consumer groups failed; not coordinating them", "topic", g.topic, "err", err)
			return
		}
		sv.engine = want
		sv.serve.Store(want)
		if sv.lead.Load() != want {
			sv.serve.Store(0) // deposed meanwhile: the next round reloads
		}
	}
}

// applyGroup applies a kindGroup entry (apply goroutine); false when e is
// none. It returns once the entry is in the engine's state log (or the
// group stops).
func (n *Node) applyGroup(g *group, e *pb.Entry) bool {
	n.syncGroups(g, e)
	if e.GetType() != pb.EntryNormal || len(e.Data) == 0 || e.Data[0] != kindGroup {
		return false
	}
	proposer, id, term, batches, err := decodeProduce(e.Data)
	if err != nil || len(batches) != 1 {
		n.log.Error("cluster: bad group entry skipped", "topic", g.topic, "index", e.GetIndex(), "err", err)
		return true
	}
	if uint64(term) != e.GetTerm() {
		// Proposed by a coordinator of another term (a deposed leader's
		// change forwarded to the next one): no replica applies it.
		if proposer == n.cfg.NodeID {
			n.finish(id, nil, errMoved)
			g.sv.pending.Delete(id)
		}
		return true
	}
	if e.GetIndex() <= n.e.GroupLogIndex(g.topic) {
		return true // in the state log already (a restart's replay)
	}
	var p *proposal
	if proposer == n.cfg.NodeID {
		p = n.takeWaiter(id)
		g.sv.pending.Delete(id)
	}
	for attempt := 0; ; attempt++ {
		err = n.e.AppendGroupRecords(context.Background(), g.topic, e.GetIndex(), batches[0], p == nil)
		if err == nil || errors.Is(err, engine.ErrTopicNotFound) {
			break
		}
		if attempt%50 == 0 {
			n.log.Error("cluster: applying the topic's group state failed; retrying", "topic", g.topic, "err", err)
		}
		select {
		case <-g.astop:
			if p != nil {
				p.err = engine.ErrClosed
				close(p.done)
			}
			return true
		case <-time.After(100 * time.Millisecond):
		}
	}
	if p != nil {
		p.err = err
		close(p.done)
	}
	return true
}

// groupSnapshot returns the topic's group state for its snapshot (apply
// goroutine); false: not now (its state log is being compacted, or failed).
func (n *Node) groupSnapshot(g *group) ([]byte, bool) {
	if n.cfg.Relay == nil {
		return nil, true
	}
	b, ok, err := n.e.GroupSnapshot(g.topic)
	if err != nil {
		n.log.Warn("cluster: reading a topic's group state for a snapshot failed; its raft log is not compacted", "topic", g.topic, "err", err)
		return nil, false
	}
	return b, ok
}

// installGroups starts the topic's group state from a snapshot's (apply
// goroutine), unless its state log holds it already; false: the group
// stopped.
func (n *Node) installGroups(g *group, snap []byte) bool {
	if len(snap) == 0 || n.cfg.Relay == nil {
		return true
	}
	for attempt := 0; ; attempt++ {
		err := n.e.InstallGroupSnapshot(context.Background(), g.topic, snap)
		if err == nil {
			return true
		}
		if attempt%50 == 0 {
			n.log.Error("cluster: installing a snapshot's consumer-group state failed; retrying", "topic", g.topic, "err", err)
		}
		select {
		case <-g.astop:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}
