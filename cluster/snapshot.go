package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Compaction and snapshots of a topic's Raft group (DESIGN.md
// "Replication", Snapshots).
//
// A topic's snapshot is its engine's log up to an end offset: the sealed
// segments and the synced part of the active one. Its Raft metadata is the
// index and term of the last entry applied, the group's ConfState at that
// index; its data (snapData) is that end offset, the last entry's append
// time, and the proposals the apply remembers to skip re-proposed copies,
// so that a replica starting from the snapshot applies the rest of the log
// exactly as one that applied it from the start.
//
//   - The loop asks a topic's apply goroutine for a durable point when the
//     group's retained log passes Config.SnapshotBytes, or when the Raft
//     log file is due for a rewrite. The apply goroutine syncs the topic in
//     the engine (which runs fsync=never in a cluster) and publishes the
//     point; only then does the loop compact the group's log below it (a
//     snapshot record in the Raft log file).
//   - A leader whose follower needs entries it dropped sends the snapshot
//     (MsgSnap; the metadata and snapData only). The follower records it in
//     its Raft log (its log now starts after it) and its apply goroutine
//     fetches the offsets its engine lacks from a replica that holds them
//     (snapfetch.go), then applies the entries after the snapshot.
//   - When the file is more than twice what the groups still hold (and
//     past 4 × SnapshotBytes), it is rewritten with only the live records.

// entrySnapMarker is the type of the apply queue's snapshot marker: not a
// Raft entry but an instruction to the apply goroutine to start from the
// snapshot in its data (index and term are the snapshot's).
const entrySnapMarker = pb.EntryType(1000)

func isSnapMarker(e *pb.Entry) bool { return e.GetType() == entrySnapMarker }

// snapState is a topic group's compaction state.
type snapState struct {
	want  atomic.Bool                  // the loop wants a durable point
	point atomic.Pointer[durablePoint] // published by the apply goroutine
	// Apply goroutine: the last entry it applied.
	aIndex, aTerm uint64
	// catching counts the snapshots queued for the apply goroutine and not
	// installed yet (their engine part maybe still being fetched from a
	// peer): while it is above 0 this replica tells its peers, in its
	// liveness frames, not to hand it leadership or a vote (quiesce.go).
	catching atomic.Int32
	// Loop: ConfStates after committed configuration changes (cs nil:
	// not known exactly, no snapshot at or above that index until a later
	// one is known).
	confs []confAt
}

type durablePoint struct {
	index, term uint64
	data        []byte
}

type confAt struct {
	index uint64
	cs    *pb.ConfState
}

// snapData is a topic snapshot's data.
type snapData struct {
	end   uint64        // engine end offset the snapshot covers
	time  int64         // append time of the last entry applied
	keys  []proposalKey // the apply's remembered proposals, oldest first
	prods *prodTable    // idempotent producers' recent sequences
	// groups is the topic's consumer-group state (engine.GroupSnapshot;
	// groups_apply.go), version 2 on.
	groups []byte
}

const snapDataVersion = 2

func encodeSnapData(d snapData) []byte {
	b := make([]byte, 0, 25+16*len(d.keys)+len(d.groups))
	b = append(b, snapDataVersion)
	b = binary.LittleEndian.AppendUint64(b, d.end)
	b = binary.LittleEndian.AppendUint64(b, uint64(d.time))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(d.keys)))
	for _, k := range d.keys {
		b = binary.LittleEndian.AppendUint64(b, k.node)
		b = binary.LittleEndian.AppendUint64(b, k.id)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(d.groups)))
	b = append(b, d.groups...)
	return appendProdTable(b, d.prods)
}

func decodeSnapData(b []byte) (snapData, error) {
	var d snapData
	if len(b) < 21 || (b[0] != 1 && b[0] != snapDataVersion) {
		return d, errors.New("cluster: bad snapshot data")
	}
	d.end, d.time = binary.LittleEndian.Uint64(b[1:]), int64(binary.LittleEndian.Uint64(b[9:]))
	n := int(binary.LittleEndian.Uint32(b[17:]))
	if len(b) < 21+16*n {
		return d, errors.New("cluster: bad snapshot data length")
	}
	for i := range n {
		p := 21 + 16*i
		d.keys = append(d.keys, proposalKey{binary.LittleEndian.Uint64(b[p:]), binary.LittleEndian.Uint64(b[p+8:])})
	}
	rest := b[21+16*n:]
	if b[0] >= 2 {
		if len(rest) < 4 || uint64(len(rest)-4) < uint64(binary.LittleEndian.Uint32(rest)) {
			return d, errors.New("cluster: bad snapshot data length")
		}
		gl := int(binary.LittleEndian.Uint32(rest))
		d.groups, rest = rest[4:4+gl], rest[4+gl:]
	}
	var err error
	d.prods, err = decodeProdTable(rest)
	return d, err
}

// keys returns the remembered proposals, oldest first.
func (r *recent) keys() []proposalKey {
	if len(r.ring) < cap(r.ring) {
		return slices.Clone(r.ring)
	}
	return append(slices.Clone(r.ring[r.pos:]), r.ring[:r.pos]...)
}

func recentFrom(keys []proposalKey) *recent {
	r := newRecent(recentProposals)
	for _, k := range keys {
		r.add(k)
	}
	return r
}

// defaultSnapshotBytes is Config.SnapshotBytes's default.
const defaultSnapshotBytes = 32 << 20

// --- the apply goroutine's side ---

// notePoint records the last entry applied (q's) and, when the loop asked
// for one, syncs the topic in the engine and publishes a durable point.
func (n *Node) notePoint(g *group, q []*pb.Entry, next uint64, last int64, seen *recent, prods *prodTable) {
	if len(q) > 0 {
		e := q[len(q)-1]
		g.snap.aIndex, g.snap.aTerm = e.GetIndex(), e.GetTerm()
	}
	if !g.snap.want.Load() || g.snap.aIndex <= firstIndex-1 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	end, err := n.e.Sync(ctx, g.topic)
	cancel()
	if err != nil {
		n.log.Warn("cluster: syncing a topic for a snapshot failed; its raft log is not compacted", "topic", g.topic, "err", err)
		return
	}
	if end < next {
		n.log.Error("cluster: engine ends below the applied log; no snapshot", "topic", g.topic, "end", end, "applied_end", next)
		return
	}
	groups, ok := n.groupSnapshot(g)
	if !ok {
		return // asked again at the next round
	}
	g.snap.want.Store(false)
	g.snap.point.Store(&durablePoint{index: g.snap.aIndex, term: g.snap.aTerm,
		data: encodeSnapData(snapData{end: next, time: last, keys: seen.keys(), prods: prods, groups: groups})})
}

// installSnapshot starts the apply from the snapshot of marker e: it
// fetches from a peer the offsets the engine lacks below the snapshot's
// end, then sets the apply state to the snapshot's. false: the group
// stopped.
func (n *Node) installSnapshot(g *group, e *pb.Entry, next *uint64, last *int64, end *uint64, seen **recent, prods **prodTable) bool {
	d, err := decodeSnapData(e.Data)
	if err != nil {
		n.log.Error("cluster: bad snapshot; topic's apply stops", "topic", g.topic, "index", e.GetIndex(), "err", err)
		<-g.astop
		return false
	}
	if _, cur, oerr := n.e.Offsets(g.topic); oerr == nil {
		*end = cur
	}
	if *end < d.end {
		n.log.Info("cluster: catching up from a snapshot", "topic", g.topic, "index", e.GetIndex(), "from", *end, "to", d.end)
		if !n.catchUp(g, d.end) {
			return false
		}
		if _, cur, oerr := n.e.Offsets(g.topic); oerr == nil {
			*end = cur
		}
		n.log.Info("cluster: caught up from a snapshot", "topic", g.topic, "index", e.GetIndex(), "end", *end)
	}
	if !n.installGroups(g, d.groups) {
		return false
	}
	*next, *last, *seen, *prods = d.end, d.time, recentFrom(d.keys), d.prods
	g.snap.aIndex, g.snap.aTerm = e.GetIndex(), e.GetTerm()
	g.applied.Store(e.GetIndex())
	g.snap.catching.Add(-1)
	return true
}

// snapMarker is the apply queue's marker for the group's snapshot sm.
func snapMarker(sm snapMeta) *pb.Entry {
	return &pb.Entry{Index: new(sm.index), Term: new(sm.term), Type: entrySnapMarker.Enum(), Data: sm.data}
}

// resumeFromSnapshot queues the group's snapshot (if it has one) for the
// apply goroutine before it starts: after a restart the log starts after
// it, and the apply starts from its state.
func (n *Node) resumeFromSnapshot(g *group) {
	g.log.mu.Lock()
	sm := g.log.snap
	g.log.mu.Unlock()
	if !sm.realSnap() {
		return
	}
	g.snap.catching.Add(1)
	g.aq = append(g.aq, snapMarker(sm))
	select {
	case g.asig <- struct{}{}:
	default:
	}
}

// --- the loop's side ---

// installFromLeader records a snapshot Raft received from the leader in the
// Raft log (the group's log now starts after it) and returns the marker
// the apply goroutine starts from (the metadata group's: installCatalog).
func (n *Node) installFromLeader(g *group, s *pb.Snapshot) *pb.Entry {
	md := s.GetMetadata()
	sm := snapMeta{index: md.GetIndex(), term: md.GetTerm(), cs: md.GetConfState(), data: slices.Clone(s.GetData())}
	if sm.data == nil {
		sm.data = []byte{}
	}
	n.wal.saveSnapshot(g.id, sm, snapInstall)
	g.snap.confs = slices.DeleteFunc(g.snap.confs, func(c confAt) bool { return c.index <= sm.index })
	n.log.Info("cluster: received a snapshot", "group", g.id, "topic", g.topic, "index", sm.index, "term", sm.term)
	if g.topic == "" {
		return snapMarker(sm) // the metadata group's: installCatalog (snapshot_meta.go)
	}
	g.snap.catching.Add(1)
	return snapMarker(sm)
}

// noteConfs records the group's ConfState after committed configuration
// changes (call after they were applied to the RawNode, before Advance).
func (g *group) noteConfs(ents []*pb.Entry) {
	k := -1
	for _, e := range ents {
		if t := e.GetType(); t == pb.EntryConfChange || t == pb.EntryConfChangeV2 {
			g.snap.confs = append(g.snap.confs, confAt{index: e.GetIndex()})
			k = len(g.snap.confs) - 1
		}
	}
	if k >= 0 {
		g.snap.confs[k].cs = confStateOf(g.rn.Status().Config)
	}
}

func confStateOf(c tracker.Config) *pb.ConfState {
	cs := &pb.ConfState{Voters: c.Voters[0].Slice(), VotersOutgoing: c.Voters[1].Slice()}
	for id := range c.Learners {
		cs.Learners = append(cs.Learners, id)
	}
	for id := range c.LearnersNext {
		cs.LearnersNext = append(cs.LearnersNext, id)
	}
	slices.Sort(cs.Learners)
	slices.Sort(cs.LearnersNext)
	if c.AutoLeave {
		cs.AutoLeave = new(true)
	}
	return cs
}

// confAt returns the group's ConfState at index (false: not known
// exactly).
func (g *group) confAt(index uint64) (*pb.ConfState, bool) {
	for i := len(g.snap.confs) - 1; i >= 0; i-- {
		if c := g.snap.confs[i]; c.index <= index {
			return c.cs, c.cs != nil
		}
	}
	g.log.mu.Lock()
	defer g.log.mu.Unlock()
	return g.log.confState(), true
}

// snapshotTick compacts the topic groups that have a durable point, asks
// for points where a group's log grew past Config.SnapshotBytes (or the
// file is due for a rewrite), and rewrites the file when it is more than
// twice what the groups hold (node loop, every second).
func (n *Node) snapshotTick() {
	// A group the node does not run is dropped by a rewrite only if its
	// topic was deleted: created at or below the applied metadata index
	// and gone from the catalog (one created above it may yet start here).
	keep := func(gid uint64) bool { return n.groups[gid] != nil || gid > n.cat.Applied }
	limit := n.cfg.SnapshotBytes
	due := false
	if n.wal.end() > 4*limit {
		due = n.wal.size > 2*n.wal.liveBytes(keep)
	}
	for _, g := range n.groups {
		if g.topic == "" {
			n.snapshotMeta(g, limit, due) // snapshot_meta.go
			continue
		}
		if p := g.snap.point.Swap(nil); p != nil {
			n.compact(g, p)
		}
		lb := g.log.logBytes()
		if lb > limit || (due && lb > 0) {
			if !g.snap.want.Swap(true) {
				select {
				case g.asig <- struct{}{}:
				default:
				}
			}
		}
	}
	if due && n.wal.size > 2*n.wal.liveBytes(keep) {
		before := n.wal.size
		if err := n.wal.rewrite(keep); err != nil {
			n.log.Error("cluster: rewriting the raft log failed; the old file stays", "err", err)
			return
		}
		n.log.Info("cluster: raft log rewritten", "bytes_before", before, "bytes_after", n.wal.size)
	}
}

// compact drops the group's log up to the durable point p, unless a
// follower that is up would then need a snapshot to catch up (while the
// log is below 4 × SnapshotBytes).
func (n *Node) compact(g *group, p *durablePoint) {
	first, _ := g.log.FirstIndex()
	last, _ := g.log.LastIndex()
	if p.index < first || p.index > last {
		return
	}
	if t, err := g.log.Term(p.index); err != nil || t != p.term {
		return
	}
	cs, ok := g.confAt(p.index)
	if !ok {
		return
	}
	if g.state == raft.StateLeader && g.log.logBytes() < 4*n.cfg.SnapshotBytes {
		behind := false
		g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
			// A replica that needs a snapshot anyway (a new one: its match
			// is below the log's first entry) does not hold compaction.
			if id != n.cfg.NodeID && pr.RecentActive && pr.Match < p.index && pr.Match+1 >= first {
				behind = true
			}
		})
		if behind {
			return
		}
	}
	n.wal.saveSnapshot(g.id, snapMeta{index: p.index, term: p.term, cs: cs, data: p.data}, 0)
	g.snap.confs = slices.DeleteFunc(g.snap.confs, func(c confAt) bool { return c.index <= p.index })
	n.log.Debug("cluster: raft log compacted", "topic", g.topic, "index", p.index)
}

// reportSnapshots tells Raft that the snapshots among msgs were sent: the
// follower's answer to its next append says whether it got one (a lost
// one is sent again then).
func reportSnapshots(g *group, msgs []*pb.Message) {
	for _, m := range msgs {
		if m.GetType() == pb.MsgSnap {
			g.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
		}
	}
}
