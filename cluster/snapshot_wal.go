package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The Raft log's snapshot records and its rewrite (FORMAT.md "Cluster Raft
// log", type 3). A compaction record drops a group's entries up to its
// index (the engine holds them, synced); an install record replaces the
// group's whole log by a snapshot received from the leader. The rewrite
// copies every live group's snapshot, hard state and retained entries to a
// new file that replaces the old one, so that the file stays near what the
// groups hold.

// encodeSnapRecord appends a snapshot record's payload to b.
func encodeSnapRecord(b []byte, flags byte, sm snapMeta) []byte {
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint64(b, sm.index)
	b = binary.LittleEndian.AppendUint64(b, sm.term)
	var cs []byte
	if sm.cs != nil {
		cs, _ = proto.Marshal(sm.cs) // a ConfState always encodes
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(cs)))
	b = append(b, cs...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(sm.data)))
	return append(b, sm.data...)
}

func decodeSnapRecord(b []byte) (sm snapMeta, flags byte, err error) {
	if len(b) < 21 {
		return sm, 0, errors.New("short snapshot record")
	}
	flags = b[0]
	sm.index, sm.term = binary.LittleEndian.Uint64(b[1:]), binary.LittleEndian.Uint64(b[9:])
	n := int(binary.LittleEndian.Uint32(b[17:]))
	p := 21
	if len(b) < p+n+4 {
		return sm, 0, errors.New("short snapshot record")
	}
	if n > 0 {
		sm.cs = &pb.ConfState{}
		if err := proto.Unmarshal(b[p:p+n], sm.cs); err != nil {
			return sm, 0, fmt.Errorf("snapshot record conf state: %w", err)
		}
	}
	p += n
	n = int(binary.LittleEndian.Uint32(b[p:]))
	p += 4
	if len(b) < p+n {
		return sm, 0, errors.New("short snapshot record")
	}
	sm.data = slices.Clone(b[p : p+n])
	return sm, flags, nil
}

// setSnap makes the group's log start after sm: compaction (install false)
// keeps the entries after sm.index; an install drops them all (the leader's
// snapshot replaces the log). An older snapshot than the group's is
// ignored.
func (g *groupLog) setSnap(sm snapMeta, install bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if sm.index < g.snap.index {
		return
	}
	last := g.snap.index + uint64(len(g.ents))
	if install || sm.index >= last {
		g.ents = nil
	} else {
		g.ents = slices.Clone(g.ents[sm.index+1-g.first():])
	}
	g.snap = sm
}

// saveSnapshot queues a snapshot record for the group and applies it to
// the group's log (flags: snapInstall for a snapshot from the leader).
func (w *wal) saveSnapshot(gid uint64, sm snapMeta, flags byte) {
	w.record(recSnapshot, gid, func(b []byte, _ int64) []byte { return encodeSnapRecord(b, flags, sm) })
	w.group(gid).setSnap(sm, flags&snapInstall != 0)
}

// realSnap reports whether the snapshot is one the node made or received
// (not the virtual one every replica starts from).
func (sm *snapMeta) realSnap() bool { return sm.data != nil }

// logBytes is the data the group's retained entries hold.
func (g *groupLog) logBytes() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for _, l := range g.ents {
		n += int64(l.n) + 13
	}
	return n
}

// liveBytes estimates what a rewrite would keep of the groups kept.
func (w *wal) liveBytes(keep func(uint64) bool) int64 {
	var n int64
	for gid, g := range w.grp {
		if keep(gid) {
			n += g.logBytes() + 64 + int64(len(g.snap.data))
		}
	}
	return n
}

// rewrite replaces the file with one holding only the kept groups'
// snapshots, hard states and retained entries (node loop; the pending
// records are written first). On failure the old file stays in use.
func (w *wal) rewrite(keep func(uint64) bool) (err error) {
	if err := w.flush(false); err != nil {
		return err
	}
	path := filepath.Join(w.dir, "wal")
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// The new file is written as the node's log is (wal.saveEntries: a
	// large entry's data goes out from its buffer, not copied into the
	// record's), in flushes of about 8 MiB; entries still kept in memory
	// are not read back.
	nw := &wal{dir: w.dir, f: f, log: w.log, grp: map[uint64]*groupLog{}}
	newLocs := map[uint64][]entryLoc{}
	for gid, g := range w.grp {
		if !keep(gid) {
			continue
		}
		g.mu.Lock()
		snap, hs, ents := g.snap, g.hs, slices.Clone(g.ents)
		g.mu.Unlock()
		if snap.realSnap() || snap.cs != nil || snap.index != firstIndex-1 {
			nw.record(recSnapshot, gid, func(b []byte, _ int64) []byte { return encodeSnapRecord(b, 0, snap) })
		}
		if hs != nil {
			nw.record(recHardState, gid, func(b []byte, _ int64) []byte {
				b = binary.LittleEndian.AppendUint64(b, hs.GetTerm())
				b = binary.LittleEndian.AppendUint64(b, hs.GetVote())
				return binary.LittleEndian.AppendUint64(b, hs.GetCommit())
			})
		}
		ng := nw.group(gid)
		ng.snap = snap // its entries follow the snapshot
		idx := snap.index + 1
		for i := 0; i < len(ents); {
			var batch []*pb.Entry
			var bytes int
			for ; i < len(ents) && (len(batch) == 0 || bytes < 8<<20); i++ {
				l := ents[i]
				data := l.data
				if data == nil && l.n > 0 {
					data = make([]byte, l.n)
					if _, err := w.f.ReadAt(data, l.off); err != nil {
						return fmt.Errorf("cluster: rewrite raft log: read entry %d of group %d: %w", idx, gid, err)
					}
				}
				batch = append(batch, &pb.Entry{Term: new(l.term), Index: new(idx), Type: l.typ.Enum(), Data: data})
				bytes += len(data)
				idx++
			}
			nw.saveEntries(gid, batch)
			if err := nw.flush(false); err != nil {
				return err
			}
		}
		locs := ng.ents
		for i := range locs {
			locs[i].data = ents[i].data // kept only where the old log kept it
		}
		newLocs[gid] = locs
	}
	if err := nw.flush(false); err != nil {
		return err
	}
	size := nw.size
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(w.dir); derr == nil {
		d.Sync()
		d.Close()
	}
	old := w.f
	w.f, w.size, w.dirty = f, size, false
	for gid, g := range w.grp {
		locs, ok := newLocs[gid]
		if !ok {
			delete(w.grp, gid) // a group the node no longer runs
			continue
		}
		g.mu.Lock()
		g.ents = locs
		g.mu.Unlock()
	}
	old.Close()
	return nil
}
