package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// Config configures a Node.
type Config struct {
	// NodeID is this node's id (1..2^63), unique in the cluster.
	NodeID uint64
	// Peers maps every node's id, this one's included, to its cluster
	// address (host:port of its cluster listener).
	Peers map[uint64]string
	// Listener is this node's cluster listener (Peers[NodeID]).
	Listener net.Listener
	// Dir holds the node's Raft log (wal) and catalog.
	Dir string
	// Engine stores the topics this node replicates.
	Engine *engine.Engine
	Logger *slog.Logger
	// ReplicationFactor is the number of replicas of a topic (0: min(3,
	// nodes)).
	ReplicationFactor int
	// TickInterval is one Raft tick (default 100 ms). A follower starts
	// an election after ElectionTicks without hearing from its leader
	// (default 10), a leader sends heartbeats every HeartbeatTicks
	// (default 2).
	TickInterval   time.Duration
	ElectionTicks  int
	HeartbeatTicks int
	// ProposalTimeout bounds how long a produce waits for its batch to be
	// committed and applied (default 10 s); then it fails with a
	// retriable error (the batch may still commit later).
	ProposalTimeout time.Duration
	// Join: this node joins a running cluster (its metadata group is
	// empty; the nodes at the cluster's start are asked from a peer).
	Join bool
	// ClientAddr is the address clients reach this node's native
	// listener at (host:port); the node tells the cluster through the
	// metadata group, and every node names it in placement answers.
	ClientAddr string
	// SnapshotBytes: a topic's Raft log is compacted (a snapshot of its
	// engine log replaces it) once it holds more than this many bytes
	// (default 32 MiB; cluster/snapshot.go).
	SnapshotBytes int64
	// Relay, when set, is the engine's engine.Options.GroupRecords relay:
	// the node serves consumer groups (groups_apply.go). Without it,
	// group calls are refused.
	Relay *Relay
}

const metaGroup = 0

// ErrNoLeader is returned (wrapped in a retriable netproto storage error)
// when a group has no leader to take a proposal, or a proposal was not
// committed within the proposal timeout.
var ErrNoLeader = errors.New("cluster: no leader")

func unavailable(format string, a ...any) error {
	return netproto.NewError(netproto.CodeStorage, fmt.Sprintf(format, a...))
}

// TopicInfo is a topic's catalog entry.
type TopicInfo struct {
	Name      string   `json:"name"`
	Group     uint64   `json:"group"`
	Replicas  []uint64 `json:"replicas"`
	Preferred uint64   `json:"preferred"`
	// Initial is the group's voters at its creation (set when a replica
	// first moves; nil: Replicas), Retiring the replicas a move replaces,
	// which keep the group until the move settled (member.go).
	Initial  []uint64 `json:"initial,omitempty"`
	Retiring []uint64 `json:"retiring,omitempty"`
}

// request is one produce waiting for its batch to be applied.
type request struct {
	batch []byte
	base  uint64
	err   error
	done  chan struct{}
}

// proposal is one entry this node proposed, waiting to be applied here.
type proposal struct {
	reqs     []*request // produce
	err      error      // metadata commands
	done     chan struct{}
	deadline time.Time
}

// Node is one broker's part of the cluster: it runs every Raft group the
// node is a member of (the metadata group on all nodes, a group per topic
// on the topic's replicas) from one loop, and implements logsvc.Service
// over the local engine.
type Node struct {
	cfg   Config
	log   *slog.Logger
	e     *engine.Engine
	wal   *wal
	tr    *transport
	nodes []uint64 // sorted

	// Loop-owned.
	groups  map[uint64]*group
	touched map[uint64]*group
	cat     catalog // the loop applies it; copies published in topics
	q       quiet   // quiescence of idle groups, node liveness (quiesce.go)

	mu      sync.Mutex
	inbox   []envelope
	propQ   map[uint64][]*request
	metaQ   [][]byte
	groupQ  []held // consumer-group entries to propose (groups_apply.go)
	sig     chan struct{}
	stopped bool
	failed  error

	wmu     sync.Mutex
	waiters map[uint64]*proposal
	nextID  atomic.Uint64

	tmu    sync.RWMutex
	topics map[string]*TopicInfo
	leads  map[string]uint64 // topic → leader as this node last saw it
	svs    sync.Map          // topic group id → *groupServe
	caddrs sync.Map          // node id → its client address, as applied (errors.go)
	// The metadata group's leader as last seen, which coordinates the
	// Kafka groups, and this node's Kafka listener (kafkafwd.go).
	metaLead  atomic.Uint64
	kafkaServ atomic.Pointer[KafkaFrames]

	statusq chan chan *Status
	doq     chan func()
	stopc   chan struct{}
	rep     repairs      // repairs from peers (repair.go)
	rix     readIndexes  // linearizable reads (readindex.go)
	rejoin  atomic.Int32 // votes after a wiped log (rejoin.go)
	rm      removal      // removed from the cluster (membership_removed.go)
	done    chan struct{}
	wg      sync.WaitGroup
}

// held is a proposal to retry until its waiter expires.
type held struct {
	gid, id uint64
	data    []byte
}

// group is one Raft group on this node.
type group struct {
	id    uint64
	topic string // "" for the metadata group
	info  *TopicInfo
	rn    *raft.RawNode
	log   *groupLog
	lead  uint64
	state raft.StateType
	// inflight: proposals of this node not known applied, held: those
	// Raft dropped (no leader known yet), both in the order first proposed
	// (loop-owned; inflight.go).
	inflight     []held
	held         []held
	pLead, pTerm uint64 // the leader and term inflight was proposed to
	quiet        bool   // not ticking (quiesce.go)
	awake        int    // tick it last woke at
	// Membership (membership.go, loop-owned): learners and whether the
	// configuration is joint, as last applied; when this leader last
	// proposed a change.
	learners     []uint64
	joint        bool
	confProposed time.Time
	rj           rejoinState   // no votes until caught up after a wiped log (rejoin.go)
	handover     []*pb.Message // forwarded proposals kept during a leadership handover (handover.go)
	// Produce batches this node proposed while leading the group, and
	// while a follower (forwarded to the leader by Raft); loop-owned.
	producesLed, producesForwarded uint64
	sv                             groupServe // consumer-group coordination (groups_apply.go)

	// Apply (topic groups): the loop queues committed entries, the apply
	// goroutine writes them to the engine. handed: the last entry the loop
	// queued (loop-owned).
	handed  uint64
	amu     sync.Mutex
	aq      []*pb.Entry
	asig    chan struct{}
	astop   chan struct{}
	adone   chan struct{}
	applied atomic.Uint64
	snap    snapState // compaction (snapshot.go)
	abuf    stageBuf  // apply goroutine's copies of an entry's batches

	aw applyWatch // readers waiting for applied (readindex.go)

	// appliedDirect: batches the apply goroutine wrote to the engine
	// itself (applyEntry).
	appliedDirect atomic.Uint64
}

// Open starts a node: it replays the Raft log, loads the catalog, starts
// the transport and the loop.
func Open(cfg Config) (*Node, error) {
	if cfg.NodeID == 0 {
		return nil, errors.New("cluster: node id must be at least 1")
	}
	if _, ok := cfg.Peers[cfg.NodeID]; !ok {
		return nil, fmt.Errorf("cluster: node %d is not among the peers", cfg.NodeID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.ElectionTicks <= 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks <= 0 {
		cfg.HeartbeatTicks = 2
	}
	if cfg.ProposalTimeout <= 0 {
		cfg.ProposalTimeout = 10 * time.Second
	}
	if cfg.SnapshotBytes <= 0 {
		cfg.SnapshotBytes = defaultSnapshotBytes
	}
	n := &Node{cfg: cfg, log: cfg.Logger, e: cfg.Engine, groups: map[uint64]*group{}, touched: map[uint64]*group{},
		propQ: map[uint64][]*request{}, sig: make(chan struct{}, 1), waiters: map[uint64]*proposal{},
		topics: map[string]*TopicInfo{}, leads: map[string]uint64{}, stopc: make(chan struct{}), done: make(chan struct{}), statusq: make(chan chan *Status), doq: make(chan func()),
		q: newQuiet()}
	for id := range cfg.Peers {
		n.nodes = append(n.nodes, id)
	}
	slices.Sort(n.nodes)
	if cfg.ReplicationFactor <= 0 {
		n.cfg.ReplicationFactor = min(3, len(n.nodes))
	}
	if n.cfg.ReplicationFactor > len(n.nodes) {
		return nil, fmt.Errorf("cluster: replication factor %d with %d nodes", cfg.ReplicationFactor, len(n.nodes))
	}
	n.nextID.Store(uint64(time.Now().UnixNano()))
	w, err := openWAL(cfg.Dir, n.log)
	if err != nil {
		return nil, err
	}
	n.wal = w
	cat, err := loadCatalog(cfg.Dir)
	if err != nil {
		w.close()
		return nil, err
	}
	n.cat = cat
	n.catalogFromSnapshot() // snapshot_meta.go
	if err := n.initMembership(); err != nil {
		w.close()
		return nil, err
	}
	// Raft hands every committed metadata entry again (applied 0), so
	// that configuration changes are applied to the group again;
	// applyMeta skips the commands the catalog already reflects.
	if err := n.startGroup(metaGroup, nil, 0, false); err != nil {
		w.close()
		return nil, err
	}
	for _, ti := range cat.Topics {
		if !ti.hosts(cfg.NodeID) {
			continue
		}
		if err := n.e.CreateTopic(ti.Name); err != nil && !errors.Is(err, engine.ErrTopicExists) {
			w.close()
			return nil, fmt.Errorf("cluster: topic %q: %w", ti.Name, err)
		}
		if err := n.startGroup(ti.Group, ti, 0, false); err != nil {
			w.close()
			return nil, err
		}
	}
	n.publishTopics()
	n.tr = newTransport(cfg.NodeID, cfg.Listener, n.cfg.Peers, n.log, n.receive)
	n.tr.stat = func() (*Status, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return n.Status(ctx)
	}
	n.tr.fetch = n.serveFetch
	n.startRepairs()
	n.tr.admin = n.Admin
	n.tr.gfwd = n.serveGroupFwd
	n.tr.kfwd = n.serveKafkaFwd
	if err := n.startRejoin(); err != nil {
		w.close()
		return nil, fmt.Errorf("cluster: rejoin guard: %w", err)
	}
	n.loadRemoved() // membership_removed.go
	n.tr.mute.Store(n.rm.removed.Load())
	n.tr.start()
	if cfg.Relay != nil {
		cfg.Relay.n.Store(n)
	}
	go n.run()
	n.startMember()
	n.log.Info("cluster: node started", "node", cfg.NodeID, "nodes", len(n.nodes), "topics", len(cat.Topics), "replication", n.cfg.ReplicationFactor)
	return n, nil
}

// Close stops the loop, the transport and the apply goroutines and closes
// the Raft log. The engine is the caller's.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	n.mu.Unlock()
	n.e.SetDamageHandler(nil)
	close(n.stopc)
	<-n.done
	n.tr.close()
	for _, g := range n.groups {
		g.stopApply()
	}
	n.failAll(engine.ErrClosed)
	return n.wal.close()
}

func (n *Node) raftConfig(id uint64, g *groupLog, applied uint64) *raft.Config {
	return &raft.Config{ID: n.cfg.NodeID, ElectionTick: n.cfg.ElectionTicks, HeartbeatTick: n.cfg.HeartbeatTicks,
		Storage: g, Applied: applied, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256,
		MaxUncommittedEntriesSize: 256 << 20, CheckQuorum: true, PreVote: true, StepDownOnRemoval: true,
		Logger: raftLogger{n.log.With("group", id)}}
}

// startGroup creates the group's RawNode (loop goroutine, or Open).
// campaign: a new topic's preferred leader starts an election at once.
func (n *Node) startGroup(id uint64, ti *TopicInfo, applied uint64, campaign bool) error {
	gl := n.wal.group(id)
	gl.initial = n.initialVoters(ti)
	gl.voters = gl.initial // until configuration changes are applied
	rn, err := raft.NewRawNode(n.raftConfig(id, gl, applied))
	if err != nil {
		return fmt.Errorf("cluster: group %d: %w", id, err)
	}
	g := &group{id: id, info: ti, rn: rn, log: gl}
	n.noteConf(g, confStateOf(rn.Status().Config)) // its snapshot's (membership.go)
	if ti != nil {
		g.topic = ti.Name
		g.asig, g.astop, g.adone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		_, end, err := n.e.Offsets(ti.Name)
		if err != nil {
			return fmt.Errorf("cluster: topic %q: %w", ti.Name, err)
		}
		n.resumeFromSnapshot(g)
		go n.applyLoop(g, end)
	}
	if campaign {
		rn.Campaign()
	}
	n.groups[id] = g
	n.touched[id] = g
	n.wakeGroup(g)
	return nil
}

func (g *group) stopApply() {
	if g.astop == nil {
		return
	}
	select {
	case <-g.astop:
	default:
		close(g.astop)
	}
	<-g.adone
}

// --- the loop ---

func (n *Node) receive(es []envelope) {
	n.mu.Lock()
	n.inbox = append(n.inbox, es...)
	n.mu.Unlock()
	n.wake()
}

func (n *Node) wake() {
	select {
	case n.sig <- struct{}{}:
	default:
	}
}

func (n *Node) run() {
	defer close(n.done)
	tk := time.NewTicker(n.cfg.TickInterval)
	defer tk.Stop()
	var inbox []envelope
	for {
		select {
		case <-n.stopc:
			return
		case <-tk.C:
			n.tick()
			ticks := n.q.ticks
			n.expire()
			n.retryHeld()
			n.releaseHandovers()
			n.retryReads()
			n.memberTick()
			if ticks%10 == 0 {
				for _, g := range n.groups {
					g.prune(n)
				}
				n.snapshotTick()
				n.rejoinTick()
				n.removedTick()
			}
			if ticks%20 == 0 {
				n.balance()
			}
		case ch := <-n.statusq:
			ch <- n.status()
		case f := <-n.doq:
			f()
		case <-n.sig:
		}
		n.mu.Lock()
		inbox, n.inbox = n.inbox, inbox[:0]
		props, metas, gq := n.propQ, n.metaQ, n.groupQ
		n.propQ, n.metaQ, n.groupQ = map[uint64][]*request{}, nil, nil
		n.mu.Unlock()
		n.stepInbox(inbox)
		for gid, reqs := range props {
			n.propose(gid, reqs)
		}
		for _, m := range metas {
			n.proposeOrHold(metaGroup, binary.LittleEndian.Uint64(m[9:]), m)
		}
		for _, h := range gq {
			n.proposeGroup(h)
		}
		n.startReads()
		if err := n.ready(); err != nil {
			n.log.Error("cluster: raft log write failed; node stops", "err", err)
			n.mu.Lock()
			n.failed = err
			n.mu.Unlock()
			n.failAll(unavailable("cluster: node failed: %v", err))
			<-n.stopc
			return
		}
	}
}

// stepInbox steps what peers sent (loop goroutine) and clears inbox.
func (n *Node) stepInbox(inbox []envelope) {
	for _, e := range inbox {
		n.heardFrom(e.from)
		if e.group == nodeFrame {
			n.nodeFrameIn(e.from, e.raw)
			continue
		}
		g := n.groups[e.group]
		if g == nil {
			continue // a group this node does not run (yet, or any more)
		}
		n.wakeOn(g, e.msg)
		n.step(g, e.msg)
		n.touched[g.id] = g
	}
	clear(inbox)
}

// step hands a peer's message to the group, handling a replica that lost
// its log (a wiped disk) on both sides:
//
//   - a follower never commits past the end of its log from a heartbeat
//     (Raft would stop the process: the leader remembers a match index the
//     wiped replica no longer has); it learns commits with the entries,
//     and answers such a heartbeat with a rejection naming its last index.
//   - a leader that sees a replica reject appends below the match index it
//     remembers hands leadership to another caught-up replica: the new
//     leader starts the wiped replica's progress from scratch and
//     re-replicates the whole log to it. (A wiped node also forgot its
//     votes: it votes again only once caught up, rejoin.go.)
func (n *Node) step(g *group, m *pb.Message) {
	if n.refuseVote(g, m) {
		return
	}
	switch m.GetType() {
	case pb.MsgHeartbeat:
		if last, _ := g.log.LastIndex(); m.GetCommit() > last {
			// Tell the leader with a rejection it ignores as stale
			// (below its match index) but step() below acts on.
			n.tr.send(g.id, []*pb.Message{{Type: pb.MsgAppResp.Enum(), To: new(m.GetFrom()), From: new(n.cfg.NodeID),
				Term: new(m.GetTerm()), Index: new(m.GetCommit()), Reject: new(true), RejectHint: new(last)}})
			m.Commit = new(last)
		}
	case pb.MsgAppResp:
		if m.GetReject() && g.state == raft.StateLeader {
			var match uint64
			var other uint64
			g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
				if id == m.GetFrom() {
					match = pr.Match
				} else if id != n.cfg.NodeID && (other == 0 || pr.Match > 0) {
					other = id
				}
			})
			if m.GetRejectHint() < match && other != 0 {
				n.log.Warn("cluster: a replica lost its log (wiped disk?); handing leadership over so that it is rebuilt",
					"group", g.id, "topic", g.topic, "replica", m.GetFrom(), "its_last_index", m.GetRejectHint(), "match_was", match, "to", other)
				g.rn.TransferLeader(other)
			}
		}
	}
	if n.holdForHandover(g, m) {
		return
	}
	g.rn.Step(m)
	n.releaseHandover(g)
}

// propose turns a group's queued produces into proposals of at most about
// 1 MiB each: one Raft entry per batch of batches.
func (n *Node) propose(gid uint64, reqs []*request) {
	g := n.groups[gid]
	if g == nil {
		for _, r := range reqs {
			r.err = fmt.Errorf("%w: topic's group %d is gone", engine.ErrTopicNotFound, gid)
			close(r.done)
		}
		return
	}
	n.touched[gid] = g
	if g.state == raft.StateLeader {
		g.producesLed += uint64(len(reqs))
	} else {
		g.producesForwarded += uint64(len(reqs))
	}
	now := time.Now().UnixNano()
	for len(reqs) > 0 {
		k, size := 0, 0
		for k < len(reqs) && (k == 0 || size+len(reqs[k].batch) <= 1<<20) {
			size += len(reqs[k].batch)
			k++
		}
		id := n.nextID.Add(1)
		data := make([]byte, 0, 29+size+4*k)
		data = append(data, kindProduce)
		data = binary.LittleEndian.AppendUint64(data, n.cfg.NodeID)
		data = binary.LittleEndian.AppendUint64(data, id)
		data = binary.LittleEndian.AppendUint64(data, uint64(now))
		data = binary.LittleEndian.AppendUint32(data, uint32(k))
		for _, r := range reqs[:k] {
			data = binary.LittleEndian.AppendUint32(data, uint32(len(r.batch)))
			data = append(data, r.batch...)
		}
		p := &proposal{reqs: reqs[:k:k], deadline: time.Now().Add(n.cfg.ProposalTimeout)}
		n.wmu.Lock()
		n.waiters[id] = p
		n.wmu.Unlock()
		n.proposeOrHold(gid, id, data)
		reqs = reqs[k:]
	}
}

// readyOf is a group's Ready in a round of the loop.
type readyOf struct {
	g  *group
	rd raft.Ready
}

// ready persists, sends and applies what every touched group has ready:
// one write and one fdatasync of the Raft log for all of them.
func (n *Node) ready() error {
	var rds []readyOf
	for id, g := range n.touched {
		delete(n.touched, id)
		if g.rn.HasReady() {
			rds = append(rds, readyOf{g, g.rn.Ready()})
		}
	}
	if len(rds) == 0 {
		return nil
	}
	sync := false
	late := make([][]*pb.Message, len(rds))
	marks := make([]*pb.Entry, len(rds))
	for i, x := range rds {
		if len(x.rd.Entries) > 0 {
			sync = true
		}
		if x.rd.Snapshot != nil && !raft.IsEmptySnap(x.rd.Snapshot) {
			marks[i] = n.installFromLeader(x.g, x.rd.Snapshot) // before the entries after it
			sync = true
		}
		termOrVote := false
		if !raft.IsEmptyHardState(x.rd.HardState) {
			x.g.log.mu.Lock()
			prev := x.g.log.hs
			x.g.log.mu.Unlock()
			termOrVote = prev == nil || prev.GetTerm() != x.rd.HardState.GetTerm() || prev.GetVote() != x.rd.HardState.GetVote()
			if termOrVote || len(x.rd.Entries) > 0 {
				sync = true
			}
			n.wal.saveHardState(x.g.id, x.rd.HardState)
		}
		// A leader's appends and heartbeats go out before its own sync
		// (the leader counts itself only once its entries are synced), so
		// the leader's and the followers' syncs overlap; responses and
		// votes wait for the sync, and everything waits when this round
		// changed the term or the vote.
		if termOrVote {
			late[i] = x.rd.Messages
		} else {
			var early []*pb.Message
			for _, m := range x.rd.Messages {
				if t := m.GetType(); t == pb.MsgApp || t == pb.MsgHeartbeat {
					early = append(early, m)
				} else {
					late[i] = append(late[i], m)
				}
			}
			n.tr.sendNow(x.g.id, n.noVotesOut(x.g, early))
		}
		n.wal.saveEntries(x.g.id, x.rd.Entries)
	}
	n.tr.writeNow() // the appends go out before the sync (transport.go)
	// A round that only moved commit indexes needs no sync (Raft may
	// forget a commit index; it never forgets a vote, a term or an entry).
	if err := n.wal.write(sync); err != nil {
		return err
	}
	if sync {
		if err := n.syncStepping(rds); err != nil {
			return err
		}
	}
	if slices.ContainsFunc(marks, func(e *pb.Entry) bool { return e != nil }) {
		n.sendLive() // catching up: before the answer that tells the leader
	}
	for i, x := range rds {
		g := x.g
		n.tr.sendNow(g.id, n.noVotesOut(g, late[i]))
		if ss := x.rd.SoftState; ss != nil {
			if g.lead != ss.Lead && g.topic != "" {
				n.log.Debug("cluster: leader changed", "topic", g.topic, "leader", ss.Lead)
			}
			g.lead, g.state = ss.Lead, ss.RaftState
		}
		if (x.rd.SoftState != nil || x.rd.HardState.GetTerm() > g.pTerm) && (len(g.inflight) > 0 || len(g.held) > 0) {
			defer n.followLeader(g) // after Advance: a new leader or term
		}
		if ss := x.rd.SoftState; ss != nil {
			if g.topic != "" {
				n.tmu.Lock()
				n.leads[g.topic] = ss.Lead
				n.tmu.Unlock()
			} else {
				n.metaLead.Store(ss.Lead)
			}
		}
		if k := len(x.rd.CommittedEntries); k > 0 {
			g.log.release(x.rd.CommittedEntries[k-1].GetIndex())
		}
		n.applyConfChanges(g, &x.rd)
		if x.rd.SoftState != nil || !raft.IsEmptyHardState(x.rd.HardState) {
			n.noteLeadership(g) // a term or a role changed, perhaps
		}
		if marks[i] != nil && g.id != metaGroup {
			g.amu.Lock()
			g.aq = append(g.aq, marks[i])
			g.amu.Unlock()
			g.handed = marks[i].GetIndex()
		}
		if len(x.rd.CommittedEntries) > 0 || marks[i] != nil {
			if g.id == metaGroup {
				if marks[i] != nil {
					n.installCatalog(marks[i]) // snapshot_meta.go
				}
				for _, e := range x.rd.CommittedEntries {
					n.applyMeta(e)
				}
			} else {
				// Entries handed to apply during the sync (syncStepping)
				// are not handed again.
				ents := x.rd.CommittedEntries
				for len(ents) > 0 && ents[0].GetIndex() <= g.handed {
					ents = ents[1:]
				}
				if k := len(ents); k > 0 {
					g.handed = ents[k-1].GetIndex()
				}
				g.amu.Lock()
				g.aq = append(g.aq, ents...)
				g.amu.Unlock()
				select {
				case g.asig <- struct{}{}:
				default:
				}
			}
		}
		g.noteConfs(x.rd.CommittedEntries)
		n.readStates(x.rd.ReadStates)
		g.rn.Advance(x.rd)
		reportSnapshots(g, late[i])
		if g.rn.HasReady() {
			n.touched[g.id] = g
			n.wake()
		}
	}
	n.tr.writeNow()
	return nil
}

// syncStepping syncs the Raft log (the round's records are written). On a
// node that leads a topic group with entries in the round, the sync runs
// beside the loop, which meanwhile steps what peers send: the followers'
// append responses can commit the round's entries before the leader's own
// sync ends (a majority of the replicas has synced them; the leader counts
// itself only once Advance reports its sync), and entries committed so
// are handed to apply at once (applyEarly), so the produce is answered
// without waiting for the leader's sync. Nothing else of the loop runs
// meanwhile: Raft's messages and the next Ready wait for the sync, as
// before (a term, a vote or an entry is never sent or acknowledged
// unsynced).
func (n *Node) syncStepping(rds []readyOf) error {
	if !slices.ContainsFunc(rds, func(x readyOf) bool {
		return x.g.id != metaGroup && x.g.state == raft.StateLeader && len(x.rd.Entries) > 0
	}) {
		return n.wal.sync()
	}
	// The groups this node leads at the sync's start, in their term: only
	// a leader's log in its term is known to hold, at every index up to
	// the commit, the entries in the group's log here (a leader never
	// truncates its log; a deposed one may be told to).
	terms := map[*group]uint64{}
	for _, x := range rds {
		if st := x.g.rn.BasicStatus(); x.g.id != metaGroup && st.RaftState == raft.StateLeader {
			terms[x.g] = st.GetTerm()
		}
	}
	done := make(chan error, 1)
	go func() { done <- n.wal.sync() }()
	var inbox []envelope
	for {
		select {
		case err := <-done:
			return err
		case <-n.sig:
		}
		n.mu.Lock()
		inbox, n.inbox = n.inbox, inbox[:0]
		n.mu.Unlock()
		if len(inbox) == 0 {
			continue
		}
		n.stepInbox(inbox)
		for g, term := range terms {
			n.applyEarly(g, term)
		}
		if syncSteppedHook != nil {
			syncSteppedHook(n)
		}
	}
}

// syncSteppedHook, when set (tests), runs after each step during a
// leader's sync.
var syncSteppedHook func(*Node)

// applyEarly hands a topic group's entries committed since the last ones
// it handed to apply (loop goroutine, during syncStepping), while this node
// still leads it in term: committed entries are applied whatever this
// replica's own sync (Raft's rule; the round's entries are in the group's
// log, written, with their data).
func (n *Node) applyEarly(g *group, term uint64) {
	if g.id == metaGroup || g.asig == nil || n.groups[g.id] != g {
		return
	}
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || st.GetTerm() != term {
		return // deposed meanwhile: the next Ready hands what is committed
	}
	commit := st.GetCommit()
	if last, _ := g.log.LastIndex(); commit > last {
		commit = last
	}
	if commit <= g.handed {
		return
	}
	ents, err := g.log.Entries(g.handed+1, commit+1, 1<<62)
	if err != nil || len(ents) == 0 {
		return // compacted or not held: the next Ready hands them
	}
	g.handed = ents[len(ents)-1].GetIndex()
	g.amu.Lock()
	g.aq = append(g.aq, ents...)
	g.amu.Unlock()
	select {
	case g.asig <- struct{}{}:
	default:
	}
}

// balance hands leadership of a topic back to its preferred replica when
// that replica is caught up, so that leaders stay spread over the nodes.
func (n *Node) balance() {
	for _, g := range n.groups {
		if g.info == nil || g.state != raft.StateLeader || g.info.Preferred == n.cfg.NodeID {
			continue
		}
		st := g.rn.Status()
		last, _ := g.log.LastIndex()
		if pr, ok := st.Progress[g.info.Preferred]; ok && pr.Match == last && pr.RecentActive && !n.peerCatching(g.info.Preferred, g.id) {
			n.wakeGroup(g)
			g.rn.TransferLeader(g.info.Preferred)
			n.touched[g.id] = g
		}
	}
}

// TransferLeader asks the topic's group to move its leadership to node to
// (which must be a replica). The current leader hands over once to is
// caught up; the call does not wait for it. Leadership drifts back to the
// preferred replica (see balance).
func (n *Node) TransferLeader(ctx context.Context, topic string, to uint64) error {
	n.tmu.RLock()
	ti := n.topics[topic]
	n.tmu.RUnlock()
	if ti == nil {
		return fmt.Errorf("%w: %q", engine.ErrTopicNotFound, topic)
	}
	errc := make(chan error, 1)
	f := func() {
		g := n.groups[ti.Group]
		if g == nil {
			errc <- fmt.Errorf("cluster: node %d runs no group for topic %q", n.cfg.NodeID, topic)
			return
		}
		n.wakeGroup(g)
		g.rn.TransferLeader(to)
		n.touched[g.id] = g
		errc <- nil
	}
	select {
	case n.doq <- f:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return engine.ErrClosed
	}
	return <-errc
}

// --- waiters ---

// finish answers proposal id (if this node proposed it): bases are the
// produce results, err the command's.
func (n *Node) finish(id uint64, bases []uint64, err error) {
	n.wmu.Lock()
	p := n.waiters[id]
	delete(n.waiters, id)
	n.wmu.Unlock()
	if p == nil {
		return
	}
	for i, r := range p.reqs {
		if err != nil {
			r.err = err
		} else {
			r.base = bases[i]
		}
		close(r.done)
	}
	p.err = err
	if p.done != nil {
		close(p.done)
	}
}

// expire fails proposals past their deadline: not known committed. The
// entry may still commit later (the client's retry may then duplicate it).
func (n *Node) expire() {
	now := time.Now()
	var ids []uint64
	n.wmu.Lock()
	for id, p := range n.waiters {
		if now.After(p.deadline) {
			ids = append(ids, id)
		}
	}
	n.wmu.Unlock()
	for _, id := range ids {
		n.finish(id, nil, inDoubt("cluster: not committed within %v (no leader, or no majority reachable); it may still be stored", n.cfg.ProposalTimeout))
	}
}

func (n *Node) failAll(err error) {
	n.wmu.Lock()
	ids := make([]uint64, 0, len(n.waiters))
	for id := range n.waiters {
		ids = append(ids, id)
	}
	n.wmu.Unlock()
	for _, id := range ids {
		n.finish(id, nil, err)
	}
	n.mu.Lock()
	props := n.propQ
	n.propQ = map[uint64][]*request{}
	n.mu.Unlock()
	for _, reqs := range props {
		for _, r := range reqs {
			r.err = err
			close(r.done)
		}
	}
}

// --- applying a topic's log to the engine ---

// applyLoop writes the topic's committed produce entries to the engine in
// log order. Offsets follow from the log: the first batch of the log is
// offset 0 and every batch takes its message count, so a replica knows
// which entries its engine already holds (below end, the engine's end
// offset at start: a restart replays the whole log) and checks that the
// engine assigns the offsets the log says.
func (n *Node) applyLoop(g *group, end uint64) {
	defer close(g.adone)
	var next uint64   // offset of the next batch per the log
	var last int64    // append time of the last entry (times never go back)
	var q []*pb.Entry // entries to apply
	seen := newRecent(recentProposals)
	prods := newProdTable()
	for {
		select {
		case <-g.astop:
			return
		case <-g.asig:
		}
		n.gateApply(g) // tests only (readindex.go)
		g.amu.Lock()
		q, g.aq = g.aq, q[:0]
		g.amu.Unlock()
		n.syncGroups(g, nil)
		for _, e := range q {
			if isSnapMarker(e) {
				if !n.installSnapshot(g, e, &next, &last, &end, &seen, &prods) {
					return
				}
				continue
			}
			if n.applyGroup(g, e) {
				g.applied.Store(e.GetIndex())
				continue
			}
			if e.GetType() != pb.EntryNormal || len(e.Data) == 0 || e.Data[0] != kindProduce {
				g.applied.Store(e.GetIndex())
				continue
			}
			proposer, id, tm, batches, err := decodeProduce(e.Data)
			if err != nil {
				n.log.Error("cluster: bad produce entry; topic's apply stops", "topic", g.topic, "index", e.GetIndex(), "err", err)
				<-g.astop
				return
			}
			// A proposal proposed again after a leader change may be in
			// the log twice: the later copy is skipped, by every replica
			// alike (they apply the same log from its start).
			key := proposalKey{proposer, id}
			if seen.has(key) {
				g.applied.Store(e.GetIndex())
				continue
			}
			seen.add(key)
			tm = max(tm, last)
			last = tm
			// Idempotent batches are deduplicated here, from the log
			// alone, so that every replica decides alike (producers.go).
			bases := make([]uint64, len(batches))
			errs := make([]error, len(batches))
			store, storeBases := batches[:0:0], bases[:0:0]
			for i, b := range batches {
				ok, dup, err := prods.decide(b, next)
				switch {
				case err != nil:
					errs[i] = err
				case !ok:
					bases[i] = dup
				default:
					bases[i] = next
					store, storeBases = append(store, b), append(storeBases, next)
					next += uint64(record.CountOf(b))
				}
			}
			if !n.applyEntry(g, store, storeBases, tm, &end) {
				return
			}
			g.applied.Store(e.GetIndex())
			if proposer == n.cfg.NodeID {
				n.finishEach(id, bases, errs)
			}
		}
		g.aw.notify()
		n.notePoint(g, q, next, last, seen, prods)
		clear(q)
	}
}

// applyEntry stores the entry's batches not yet in the engine, retrying
// engine failures until they succeed or the group stops (false).
func (n *Node) applyEntry(g *group, batches [][]byte, bases []uint64, tm int64, end *uint64) bool {
	for attempt := 0; ; attempt++ {
		var ps []engine.Pending
		var want []uint64
		var err error
		buf := g.stage(batches)
		for i, b := range batches {
			cnt := uint64(record.CountOf(b))
			if bases[i]+cnt <= *end {
				continue // already stored (replay after a restart)
			}
			if bases[i] != *end {
				err = fmt.Errorf("engine ends at %d, the log's batch is at %d", *end, bases[i])
				break
			}
			var p engine.Pending
			// The engine stamps the batch in place: a copy, in the
			// apply's buffer (reused once every batch is stored). An
			// entry of one batch (a produce at a time) is written by
			// this goroutine when the topic's writer is idle: no hand-off
			// to the writer and back before the produce is answered.
			// Several go through the writer, which writes them together.
			if len(batches) == 1 {
				p, err = n.e.EnqueueAtDirect(context.Background(), g.topic, buf.next(b), tm)
				if err == nil && p.Ready() {
					g.appliedDirect.Add(1)
				}
			} else {
				p, err = n.e.EnqueueAt(context.Background(), g.topic, buf.next(b), tm)
			}
			if err != nil {
				break
			}
			ps = append(ps, p)
			want = append(want, bases[i])
			*end += cnt
		}
		for i, p := range ps {
			off, werr := p.Wait()
			if werr != nil && err == nil {
				err = werr
			}
			if werr == nil && off != want[i] {
				n.log.Error("cluster: engine stored a batch at another offset than the log's", "topic", g.topic, "offset", off, "want", want[i])
			}
		}
		if err == nil {
			return true
		}
		_, e, oerr := n.e.Offsets(g.topic)
		if oerr == nil {
			*end = e
		}
		if attempt%50 == 0 {
			n.log.Error("cluster: applying the topic's log to storage failed; retrying", "topic", g.topic, "err", err)
		}
		select {
		case <-g.astop:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// recentProposals is how many applied proposals a topic remembers to skip
// their copies: a copy follows its original by at most the proposals in
// flight at a leader change (each is up to 1 MiB of batches); about 400
// KiB per busy topic.
const recentProposals = 8192

type proposalKey struct{ node, id uint64 }

// recent is a bounded set of proposal keys: the oldest is forgotten first.
type recent struct {
	set  map[proposalKey]struct{}
	ring []proposalKey
	pos  int
}

func newRecent(n int) *recent {
	return &recent{set: make(map[proposalKey]struct{}), ring: make([]proposalKey, 0, n)}
}

func (r *recent) has(k proposalKey) bool { _, ok := r.set[k]; return ok }

func (r *recent) add(k proposalKey) {
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, k)
	} else {
		delete(r.set, r.ring[r.pos])
		r.ring[r.pos] = k
		r.pos = (r.pos + 1) % len(r.ring)
	}
	r.set[k] = struct{}{}
}

func decodeProduce(d []byte) (proposer, id uint64, tm int64, batches [][]byte, err error) {
	if len(d) < 29 {
		return 0, 0, 0, nil, errors.New("short produce entry")
	}
	proposer, id, tm = binary.LittleEndian.Uint64(d[1:]), binary.LittleEndian.Uint64(d[9:]), int64(binary.LittleEndian.Uint64(d[17:]))
	k := binary.LittleEndian.Uint32(d[25:])
	p := 29
	for range k {
		if len(d) < p+4 {
			return 0, 0, 0, nil, errors.New("short produce entry")
		}
		l := int(binary.LittleEndian.Uint32(d[p:]))
		p += 4
		if len(d) < p+l || l < record.HeaderSize {
			return 0, 0, 0, nil, errors.New("bad batch length in produce entry")
		}
		batches = append(batches, d[p:p+l:p+l])
		p += l
	}
	return proposer, id, tm, batches, nil
}

// --- metadata ---

// applyMeta applies one committed entry of the metadata group (loop
// goroutine) and saves the catalog.
func (n *Node) applyMeta(e *pb.Entry) {
	idx := e.GetIndex()
	if idx <= n.cat.Applied {
		return
	}
	d := e.Data
	if e.GetType() != pb.EntryNormal || len(d) < 19 {
		n.cat.Applied = idx
		return
	}
	kind, id := d[0], binary.LittleEndian.Uint64(d[9:])
	proposer := binary.LittleEndian.Uint64(d[1:])
	nl := int(binary.LittleEndian.Uint16(d[17:]))
	if len(d) < 19+nl {
		n.cat.Applied = idx
		return
	}
	name := string(d[19 : 19+nl])
	var err error
	switch kind {
	case kindCreateTopic:
		if _, ok := n.cat.find(name); ok {
			err = fmt.Errorf("%w: %q", engine.ErrTopicExists, name)
			break
		}
		k := n.cat.Created
		n.cat.Created++
		pref := n.nodes[int(k%uint64(len(n.nodes)))]
		ti := &TopicInfo{Name: name, Group: idx, Preferred: pref}
		start := slices.Index(n.nodes, pref)
		for i := range min(n.cfg.ReplicationFactor, len(n.nodes)) {
			ti.Replicas = append(ti.Replicas, n.nodes[(start+i)%len(n.nodes)])
		}
		sort.Slice(ti.Replicas, func(a, b int) bool { return ti.Replicas[a] < ti.Replicas[b] })
		n.cat.Topics = append(n.cat.Topics, ti)
		if slices.Contains(ti.Replicas, n.cfg.NodeID) {
			if cerr := n.e.CreateTopic(name); cerr != nil && !errors.Is(cerr, engine.ErrTopicExists) {
				n.log.Error("cluster: creating a replicated topic's storage failed", "topic", name, "err", cerr)
				err = cerr
			} else if serr := n.startGroup(ti.Group, ti, 0, pref == n.cfg.NodeID); serr != nil {
				n.log.Error("cluster: starting a topic's raft group failed", "topic", name, "err", serr)
				err = serr
			}
		}
	case kindNodeAddr:
		n.cat.setClientAddr(proposer, name)
		n.caddrs.Store(proposer, name)
	case kindKafkaAddr:
		n.cat.node(proposer).Kafka = name
	case kindAddNode, kindRemoveNode, kindMoveReplica, kindSettle:
		err = n.applyMembership(kind, name)
	case kindDeleteTopic:
		ti, ok := n.cat.find(name)
		if !ok {
			err = fmt.Errorf("%w: %q", engine.ErrTopicNotFound, name)
			break
		}
		n.cat.remove(name)
		if g := n.groups[ti.Group]; g != nil {
			delete(n.groups, ti.Group)
			delete(n.touched, ti.Group)
			delete(n.q.active, ti.Group)
			g.stopApply()
		}
		if derr := n.e.DeleteTopic(name); derr != nil && !errors.Is(derr, engine.ErrTopicNotFound) {
			n.log.Error("cluster: deleting a topic's storage failed", "topic", name, "err", derr)
		}
	}
	n.cat.Applied = idx
	if kind == kindSync {
		if proposer == n.cfg.NodeID {
			n.finish(id, nil, nil)
		}
		return
	}
	if serr := n.cat.save(n.cfg.Dir); serr != nil {
		n.log.Error("cluster: saving the catalog failed", "err", serr)
	}
	n.publishTopics()
	if proposer == n.cfg.NodeID {
		n.finish(id, nil, err)
	}
}

func (n *Node) publishTopics() {
	m := make(map[string]*TopicInfo, len(n.cat.Topics))
	for _, ti := range n.cat.Topics {
		m[ti.Name] = ti
	}
	n.tmu.Lock()
	n.topics = m
	n.tmu.Unlock()
}

// metaCommand proposes a metadata command and waits until this node
// applied it.
func (n *Node) metaCommand(ctx context.Context, kind byte, name string) error {
	id := n.nextID.Add(1)
	d := []byte{kind}
	d = binary.LittleEndian.AppendUint64(d, n.cfg.NodeID)
	d = binary.LittleEndian.AppendUint64(d, id)
	d = binary.LittleEndian.AppendUint16(d, uint16(len(name)))
	d = append(d, name...)
	p := &proposal{done: make(chan struct{}), deadline: time.Now().Add(n.cfg.ProposalTimeout)}
	n.wmu.Lock()
	n.waiters[id] = p
	n.wmu.Unlock()
	n.mu.Lock()
	if n.stopped || n.failed != nil {
		n.mu.Unlock()
		n.finish(id, nil, engine.ErrClosed)
		return engine.ErrClosed
	}
	n.metaQ = append(n.metaQ, d)
	n.mu.Unlock()
	n.wake()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
