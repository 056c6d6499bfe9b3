package cluster

import (
	"encoding/binary"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Quiescence: an idle Raft group stops ticking, so 1,000 idle topics cost
// neither heartbeats nor CPU.
//
// A leader quiesces its group when nothing is pending (no Ready, no
// leadership transfer), everything is committed and applied, every replica
// whose node is live (voter or learner) has the whole log, and the live
// voters are a majority; the replicas are the group's current
// configuration, not the catalog's. It then stops ticking the group and
// tells each live follower with a quiesce notice (group, term, commit),
// one node frame per peer and round for all its groups. A follower whose
// group has that term and that leader takes the commit (stepped as a
// heartbeat from the leader) and stops ticking too: it does not campaign
// while the group is quiet.
//
// Node liveness replaces the groups' heartbeats: every node sends each
// peer a liveness frame (its incarnation: the start time) every tick, and
// judges a peer down when nothing came from it for ElectionTicks ticks.
//
// A quiet group wakes (ticks again) when:
//   - a proposal is made to it (here, or forwarded: any Raft message but a
//     heartbeat response wakes it);
//   - this node itself stalled (paused, starved) for an election timeout
//     between two ticks: others may have replaced it as leader meanwhile;
//   - a node holding one of its replicas goes down, comes back, or
//     restarted (a new incarnation). A quiet follower whose leader's node
//     went down or restarted also advances its election timer by
//     ElectionTicks-1 ticks, for it heard nothing from that node for as
//     long: the group elects a leader about as soon as it would have
//     without quiescence. A leader cut off from a majority wakes and
//     CheckQuorum steps it down.
//
// Ticks are only Raft's clock: never ticking a group cannot break Raft's
// safety, only delay an election; the waking rules bound that delay. A
// woken leader stays awake at least 2 heartbeat intervals, so that a
// follower that missed the notice (and campaigns, which wakes the leader)
// hears a heartbeat before the group is quiet again.

// nodeFrame is the group id of frames for the node, not a Raft group: a
// frame kind byte, then the frame.
const nodeFrame = ^uint64(0)

const (
	frameLive    = 1 // u64 incarnation [, u32 count, count × u64 group catching up]
	frameQuiesce = 2 // u32 count, then count × (u64 group, u64 term, u64 commit)
)

// quiet is the loop's quiescence state (loop-owned).
type quiet struct {
	ticks   int
	active  map[uint64]*group // groups that tick
	heard   map[uint64]int    // peer → tick something last came from it
	down    map[uint64]bool   // peers judged down
	inc     map[uint64]uint64 // peer → incarnation last heard
	self    uint64            // this node's incarnation
	notices map[uint64][]byte // peer → quiesce notices of this round
	// catching: peer → the topic groups whose replica there is still
	// installing a snapshot (fetching its engine's part from a peer), as
	// its last liveness frame said: not handed leadership, not promoted.
	catching map[uint64][]uint64
	last     time.Time // when the previous tick ran
}

func newQuiet() quiet {
	return quiet{active: map[uint64]*group{}, heard: map[uint64]int{}, down: map[uint64]bool{},
		inc: map[uint64]uint64{}, self: uint64(time.Now().UnixNano()), notices: map[uint64][]byte{}, catching: map[uint64][]uint64{}}
}

// wakeGroup makes g tick again (a proposal, a message, a node change).
func (n *Node) wakeGroup(g *group) {
	g.quiet = false
	g.awake = n.q.ticks
	n.q.active[g.id] = g
}

// wakeOn wakes a quiet group for a message received for it: anything but
// a heartbeat response (a follower's answer to the quiesce notice).
func (n *Node) wakeOn(g *group, m *pb.Message) {
	if g.quiet && m.GetType() != pb.MsgHeartbeatResp {
		n.wakeGroup(g)
	}
}

// heardFrom notes that something came from peer id.
func (n *Node) heardFrom(id uint64) {
	if id != 0 && id != n.cfg.NodeID {
		n.q.heard[id] = n.q.ticks
	}
}

// tick advances the node's clock by one tick: liveness frames out, peers'
// liveness judged, active groups ticked or quiesced.
func (n *Node) tick() {
	q := &n.q
	q.ticks++
	// A node that stalled (paused, starved) for an election timeout may
	// have been judged down and replaced as leader meanwhile, which its
	// quiet groups would not learn from anyone: wake them all.
	now := time.Now()
	if !q.last.IsZero() && now.Sub(q.last) > time.Duration(n.cfg.ElectionTicks)*n.cfg.TickInterval {
		n.log.Info("cluster: this node stalled for an election timeout; waking its groups", "stall", now.Sub(q.last).Round(time.Millisecond))
		for _, g := range n.groups {
			n.wakeGroup(g)
			n.touched[g.id] = g
		}
	}
	q.last = now
	live := n.liveFrame()
	for id := range n.tr.peers {
		n.tr.sendNode(id, live)
		down := q.ticks-q.heard[id] > n.cfg.ElectionTicks
		if down != q.down[id] {
			q.down[id] = down
			if down {
				n.log.Info("cluster: peer down (nothing heard for an election timeout)", "peer", id)
			} else {
				n.log.Info("cluster: peer up", "peer", id)
			}
			n.peerChanged(id, down)
		}
	}
	for _, g := range q.active {
		if n.canQuiesce(g) {
			n.quiesce(g)
			continue
		}
		g.rn.Tick()
		n.touched[g.id] = g
	}
	n.sendNotices()
}

// liveFrame is this node's liveness frame: its incarnation and the topic
// groups whose replica here is still installing a snapshot.
func (n *Node) liveFrame() []byte {
	b := binary.LittleEndian.AppendUint64([]byte{frameLive}, n.q.self)
	var ids []uint64
	for id, g := range n.groups {
		if g.snap.catching.Load() > 0 {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(ids)))
		for _, id := range ids {
			b = binary.LittleEndian.AppendUint64(b, id)
		}
	}
	return b
}

// sendLive sends every peer this node's liveness frame now (loop): after
// a snapshot was installed, ahead of the answer that tells the leader, so
// that the leader knows the replica is catching up before it counts it
// caught up.
func (n *Node) sendLive() {
	live := n.liveFrame()
	for id := range n.tr.peers {
		n.tr.sendNode(id, live)
	}
}

// peerCatching reports whether peer's replica of group gid is still
// installing a snapshot, per its last liveness frame: its Raft log holds
// the group's log, but its engine may still be fetching what the snapshot
// covers, so it must not lead the group (its reads would miss acknowledged
// messages, its produces and consumer groups wait) nor be promoted by a
// move (the retiring replica's copy would go first).
func (n *Node) peerCatching(peer, gid uint64) bool {
	return slices.Contains(n.q.catching[peer], gid)
}

// peerChanged wakes every group with a replica on peer id (down, up, or
// restarted: lost): a quiet follower whose leader was there advances its
// election timer.
func (n *Node) peerChanged(id uint64, lost bool) {
	for _, g := range n.groups {
		if !slices.Contains(members(g), id) {
			continue
		}
		wasQuiet := g.quiet
		n.wakeGroup(g)
		n.touched[g.id] = g
		if lost && wasQuiet && g.state == raft.StateFollower && g.lead == id {
			for range n.cfg.ElectionTicks - 1 {
				g.rn.Tick()
			}
		}
	}
}

// canQuiesce reports whether leader group g may stop ticking.
func (n *Node) canQuiesce(g *group) bool {
	if g.state != raft.StateLeader || n.q.ticks-g.awake < 2*n.cfg.HeartbeatTicks+1 || len(g.inflight) > 0 || g.rn.HasReady() {
		return false
	}
	bs := g.rn.BasicStatus()
	last, _ := g.log.LastIndex()
	if bs.LeadTransferee != raft.None || bs.GetCommit() != last || bs.Applied != last {
		return false
	}
	ok, live, voters := true, 0, 0
	g.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		peer := typ == raft.ProgressTypePeer // a voter, not a learner
		if peer {
			voters++
		}
		if id == n.cfg.NodeID {
			live++
			return
		}
		if n.q.down[id] {
			return
		}
		if peer {
			live++
		}
		if pr.Match != last {
			ok = false // a live replica (voter or learner) still catching up
		}
	})
	return ok && live > voters/2
}

// members returns the group's voters and learners, per its current
// configuration (membership changes move them).
func members(g *group) []uint64 {
	var ids []uint64
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, _ tracker.Progress) { ids = append(ids, id) })
	return ids
}

// quiesce stops leader group g's ticks and queues a notice to each live
// follower.
func (n *Node) quiesce(g *group) {
	g.quiet = true
	delete(n.q.active, g.id)
	bs := g.rn.BasicStatus()
	for _, id := range members(g) {
		if id == n.cfg.NodeID || n.q.down[id] {
			continue
		}
		b := n.q.notices[id]
		if len(b) == 0 {
			b = append(b, frameQuiesce, 0, 0, 0, 0)
		}
		b = binary.LittleEndian.AppendUint64(b, g.id)
		b = binary.LittleEndian.AppendUint64(b, bs.GetTerm())
		b = binary.LittleEndian.AppendUint64(b, bs.GetCommit())
		binary.LittleEndian.PutUint32(b[1:], binary.LittleEndian.Uint32(b[1:])+1)
		n.q.notices[id] = b
	}
}

func (n *Node) sendNotices() {
	for id, b := range n.q.notices {
		n.tr.sendNode(id, b)
		delete(n.q.notices, id)
	}
}

// nodeFrameIn handles a node frame from peer from (loop goroutine).
func (n *Node) nodeFrameIn(from uint64, b []byte) {
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case frameLive:
		if len(b) < 9 {
			return
		}
		inc := binary.LittleEndian.Uint64(b[1:])
		if prev := n.q.inc[from]; prev != 0 && prev != inc {
			n.log.Info("cluster: peer restarted", "peer", from)
			n.peerChanged(from, true)
		}
		n.q.inc[from] = inc
		var catching []uint64
		if len(b) >= 13 {
			k := min(int(binary.LittleEndian.Uint32(b[9:])), (len(b)-13)/8)
			for i := range k {
				catching = append(catching, binary.LittleEndian.Uint64(b[13+8*i:]))
			}
		}
		n.q.catching[from] = catching
	case frameQuiesce:
		if len(b) < 5 {
			return
		}
		cnt := int(binary.LittleEndian.Uint32(b[1:]))
		b = b[5:]
		for range cnt {
			if len(b) < 24 {
				return
			}
			gid, term, commit := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b[16:])
			b = b[24:]
			g := n.groups[gid]
			if g == nil || g.quiet {
				continue
			}
			bs := g.rn.BasicStatus()
			if bs.RaftState != raft.StateFollower || bs.Lead != from || bs.GetTerm() != term {
				continue // it campaigns in time, which wakes the leader
			}
			n.step(g, &pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(from), To: new(n.cfg.NodeID), Term: new(term), Commit: new(commit)})
			n.touched[g.id] = g
			if g.rn.BasicStatus().GetCommit() == commit {
				g.quiet = true
				delete(n.q.active, g.id)
			}
		}
	}
}
