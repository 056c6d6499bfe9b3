package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The node's Raft log: one append-only file (cluster/wal) for every Raft
// group of the node, so that one fdatasync per round of the node loop makes
// every group's new entries and hard states durable. FORMAT.md "Cluster
// Raft log" has the layout. Records are never rewritten in place: a later
// entries record that starts at an index already held replaces the tail
// from that index on (Raft's log truncation), a later hard-state record
// replaces the earlier one, a snapshot record drops the entries it covers
// (compaction) or the whole log (a snapshot installed from the leader).
// The file is bounded by rewriting it: when it is much larger than what the
// groups still hold, the live records are copied to a new file that
// replaces it (rewrite, cluster/snapshot.go decides when).

const (
	recEntries   = 1
	recHardState = 2
	recSnapshot  = 3
	recHeader    = 8 // body length, CRC-32C of the body
	maxRecord    = 256 << 20

	snapInstall = 1 // snapshot record flag: the log is replaced, not compacted
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// entryLoc is where one entry's data lies in the file.
type entryLoc struct {
	term uint64
	off  int64
	n    uint32
	typ  pb.EntryType
	// data is the entry's data, kept from its append until it has been
	// handed to apply (release): Raft asks for committed entries right
	// after they were appended, and reading them back from the file cost
	// a read and a copy per round. Nobody modifies entry data.
	data []byte
}

// groupLog is one Raft group's part of the WAL and its raft.Storage. A
// group's log starts after a snapshot: at first the virtual one at index
// 1, term 1, holding the group's voters (every replica starts from it),
// later the last compaction's or the one installed from the leader
// (cluster/snapshot.go).
type groupLog struct {
	w    *wal
	mu   sync.Mutex // ents, hs, snap (the node loop writes, Entries reads)
	ents []entryLoc // index snap.index+1+i
	hs   *pb.HardState
	// voters are the group's voters now (after the configuration changes
	// applied), initial those of the virtual snapshot every replica
	// starts from (the group's first voters: member.go).
	voters  []uint64
	initial []uint64
	snap    snapMeta
	// released: entries below it keep no data (release).
	released uint64
	// snapNeed: a replica was added at this index; a snapshot from before
	// it is not sent (snapshotForNewReplica).
	snapNeed uint64
}

// snapMeta is the snapshot a group's log starts after. cs nil: the voters;
// data nil: the virtual snapshot every replica starts from.
type snapMeta struct {
	index, term uint64
	cs          *pb.ConfState
	data        []byte
}

// firstIndex is the first index of a group's log before any snapshot.
const firstIndex = 2

// first is the index of the group's first entry (g.mu held).
func (g *groupLog) first() uint64 { return g.snap.index + 1 }

type wal struct {
	dir  string
	f    *os.File
	log  *slog.Logger
	mu   sync.Mutex
	size int64 // bytes in the file (written)
	// Records queued, not yet written: vecs in order, then buf[mark:].
	// Small parts of records are encoded in buf; an entry's data of
	// walInline bytes or more is a vector of its own, written from the
	// entry itself (one pwritev per flush, no copy into buf).
	buf    []byte
	vecs   [][]byte
	mark   int   // start of buf's bytes not yet in vecs
	vbytes int64 // bytes in vecs
	dirty  bool  // written since the last sync
	grp    map[uint64]*groupLog
	fresh  bool // the file held no record at open (a new node, or a wiped one)
	// zend: the file holds zeros, written ahead of the records, up to
	// here (flush); zf: the file zend is of (a rewrite replaces it).
	zend int64
	zf   *os.File
	// beforeSync, when set (tests), is called before each fdatasync.
	beforeSync func()
}

// walInline: entry data shorter than this is copied into the record
// buffer (a vector of its own costs more than the copy).
const walInline = 4 << 10

// Zeros written ahead. A synced round of at most walAheadRound bytes that
// would grow the file writes walAhead bytes of zeros after its records,
// in the same pwritev and fdatasync; the small rounds after it overwrite
// blocks inside the file, so that their fdatasync writes their data alone
// and not also the inode (the file's size) in a second device write (on
// this machine's ext4 a sync of an append costs about 50 µs more than one
// of an overwrite). The zeros end the log at open (a record length of 0)
// and are kept; larger rounds, where the inode write is small beside the
// data, grow the file as they always did.
const (
	walAhead      = 1 << 20
	walAheadRound = 64 << 10
)

// walZeros: walAhead zero bytes, shared by every node of the process
// (never written to).
var walZeros = sync.OnceValue(func() []byte { return make([]byte, walAhead) })

// openWAL opens (or creates) dir/wal and replays it. A record that fails its
// checksum or is cut short ends the log: the file is truncated there (a
// torn write of an unsynced round; synced rounds were never acknowledged
// past it).
func openWAL(dir string, log *slog.Logger) (*wal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "wal")
	os.Remove(path + ".new") // a rewrite cut short: the old file is whole
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	w := &wal{dir: dir, f: f, log: log, grp: map[uint64]*groupLog{}}
	good, err := w.replay()
	if err != nil {
		f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	w.zf, w.zend = f, good
	if st.Size() > good {
		if zero, err := zeroFrom(f, good, st.Size()); err != nil {
			f.Close()
			return nil, err
		} else if zero {
			w.zend = st.Size() // zeros written ahead (flush): kept
		} else {
			log.Warn("cluster: raft log ends in a torn record; cut", "path", path, "size", st.Size(), "kept", good)
			if err := f.Truncate(good); err != nil {
				f.Close()
				return nil, err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	w.size = good
	w.fresh = good == 0
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return w, nil
}

// zeroFrom reports whether f holds only zero bytes from off to size.
func zeroFrom(f *os.File, off, size int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for off < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		for _, b := range buf[:n] {
			if b != 0 {
				return false, nil
			}
		}
		off += int64(n)
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

func (w *wal) replay() (int64, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(w.f, 0, 1<<62), 1<<20)
	var pos int64
	var hdr [recHeader]byte
	var body []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return pos, nil
		}
		n := binary.LittleEndian.Uint32(hdr[0:])
		if n < 9 || n > maxRecord {
			return pos, nil
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return pos, nil
		}
		if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			return pos, nil
		}
		if err := w.load(body, pos+recHeader); err != nil {
			return 0, fmt.Errorf("cluster: raft log record at %d: %w", pos, err)
		}
		pos += recHeader + int64(n)
	}
}

// load applies one record's body (at file offset at) to the groups.
func (w *wal) load(b []byte, at int64) error {
	typ, gid := b[0], binary.LittleEndian.Uint64(b[1:])
	g := w.group(gid)
	p := 9
	switch typ {
	case recHardState:
		if len(b) < p+24 {
			return errors.New("short hard state")
		}
		g.hs = &pb.HardState{Term: new(binary.LittleEndian.Uint64(b[p:])), Vote: new(binary.LittleEndian.Uint64(b[p+8:])), Commit: new(binary.LittleEndian.Uint64(b[p+16:]))}
	case recEntries:
		if len(b) < p+12 {
			return errors.New("short entries")
		}
		first, cnt := binary.LittleEndian.Uint64(b[p:]), binary.LittleEndian.Uint32(b[p+8:])
		p += 12
		if first < g.first() || first > g.first()+uint64(len(g.ents)) {
			return fmt.Errorf("group %d: entries from %d do not join the log ending at %d", gid, first, g.first()+uint64(len(g.ents))-1)
		}
		g.ents = g.ents[:first-g.first()]
		for range cnt {
			if len(b) < p+13 {
				return errors.New("short entry")
			}
			term, et, n := binary.LittleEndian.Uint64(b[p:]), b[p+8], binary.LittleEndian.Uint32(b[p+9:])
			p += 13
			if len(b) < p+int(n) {
				return errors.New("short entry data")
			}
			g.ents = append(g.ents, entryLoc{term: term, off: at + int64(p), n: n, typ: pb.EntryType(et)})
			p += int(n)
		}
	case recSnapshot:
		sm, flags, err := decodeSnapRecord(b[p:])
		if err != nil {
			return err
		}
		g.setSnap(sm, flags&snapInstall != 0)
	default:
		return fmt.Errorf("unknown record type %d", typ)
	}
	return nil
}

// group returns the group's log, creating an empty one.
func (w *wal) group(id uint64) *groupLog {
	g := w.grp[id]
	if g == nil {
		g = &groupLog{w: w, snap: snapMeta{index: firstIndex - 1, term: 1}}
		w.grp[id] = g
	}
	return g
}

// record appends one record (type, group, payload built by fill) to the
// pending buffer.
func (w *wal) record(typ byte, gid uint64, fill func(b []byte, at int64) []byte) {
	w.buf = appendRecord(w.buf, w.bufBase(), typ, gid, fill)
}

// bufBase is the file offset buf[0] would have: buf[mark:] follows vecs.
func (w *wal) bufBase() int64 { return w.size + w.vbytes - int64(w.mark) }

// end is the file's size once the pending records are written.
func (w *wal) end() int64 { return w.bufBase() + int64(len(w.buf)) }

// cut ends buf's pending run as a vector. Later appends may move buf; the
// vector keeps the bytes already encoded.
func (w *wal) cut() {
	if len(w.buf) > w.mark {
		w.vecs = append(w.vecs, w.buf[w.mark:len(w.buf):len(w.buf)])
		w.vbytes += int64(len(w.buf) - w.mark)
	}
	w.mark = len(w.buf)
}

// appendRecord appends one record to buf, which is written at file offset
// base; fill gets the file offset of the body.
func appendRecord(buf []byte, base int64, typ byte, gid uint64, fill func(b []byte, at int64) []byte) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, recHeader+9)...)
	buf[start+recHeader] = typ
	binary.LittleEndian.PutUint64(buf[start+recHeader+1:], gid)
	at := base + int64(start) + recHeader // file offset of the body
	buf = fill(buf, at)
	body := buf[start+recHeader:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(body, crcTable))
	return buf
}

// saveHardState queues a hard-state record.
func (w *wal) saveHardState(gid uint64, hs *pb.HardState) {
	w.record(recHardState, gid, func(b []byte, _ int64) []byte {
		b = binary.LittleEndian.AppendUint64(b, hs.GetTerm())
		b = binary.LittleEndian.AppendUint64(b, hs.GetVote())
		return binary.LittleEndian.AppendUint64(b, hs.GetCommit())
	})
	g := w.group(gid)
	g.mu.Lock()
	g.hs = &pb.HardState{Term: new(hs.GetTerm()), Vote: new(hs.GetVote()), Commit: new(hs.GetCommit())}
	g.mu.Unlock()
}

// saveEntries queues an entries record; ents replace the group's log from
// their first index on. The record (FORMAT.md "Cluster Raft log"): the
// first index, the count, then per entry its term, type, data length and
// data; an entry's data of walInline bytes or more is written from the
// entry (a vector of its own): the checksum is computed over the record's
// parts first, so that its header is final before the first vector.
func (w *wal) saveEntries(gid uint64, ents []*pb.Entry) {
	if len(ents) == 0 {
		return
	}
	g := w.group(gid)
	var pre [9 + 12]byte
	pre[0] = recEntries
	binary.LittleEndian.PutUint64(pre[1:], gid)
	binary.LittleEndian.PutUint64(pre[9:], ents[0].GetIndex())
	binary.LittleEndian.PutUint32(pre[17:], uint32(len(ents)))
	crc := crc32.Update(0, crcTable, pre[:])
	body := len(pre)
	var eh [13]byte
	for _, e := range ents {
		putEntryHeader(eh[:], e)
		crc = crc32.Update(crc, crcTable, eh[:])
		crc = crc32.Update(crc, crcTable, e.Data)
		body += len(eh) + len(e.Data)
	}
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(body))
	w.buf = binary.LittleEndian.AppendUint32(w.buf, crc)
	w.buf = append(w.buf, pre[:]...)
	locs := make([]entryLoc, len(ents))
	for i, e := range ents {
		putEntryHeader(eh[:], e)
		w.buf = append(w.buf, eh[:]...)
		locs[i] = entryLoc{term: e.GetTerm(), n: uint32(len(e.Data)), typ: e.GetType(), data: e.Data}
		if len(e.Data) < walInline {
			locs[i].off = w.end()
			w.buf = append(w.buf, e.Data...)
			continue
		}
		w.cut()
		locs[i].off = w.end()
		w.vecs = append(w.vecs, e.Data)
		w.vbytes += int64(len(e.Data))
	}
	g.mu.Lock()
	first := ents[0].GetIndex()
	if first < g.first() || first > g.first()+uint64(len(g.ents)) {
		g.mu.Unlock()
		panic(fmt.Sprintf("cluster: group %d: raft appended entries from %d to a log ending at %d", gid, first, g.first()+uint64(len(g.ents))-1))
	}
	g.ents = append(g.ents[:first-g.first()], locs...)
	g.mu.Unlock()
}

// putEntryHeader encodes an entry's header in an entries record: term,
// type, data length.
func putEntryHeader(b []byte, e *pb.Entry) {
	binary.LittleEndian.PutUint64(b, e.GetTerm())
	b[8] = byte(e.GetType())
	binary.LittleEndian.PutUint32(b[9:], uint32(len(e.Data)))
}

// flush writes the pending records and, with sync, syncs the file: then
// every record queued before is durable.
func (w *wal) flush(sync bool) error {
	if err := w.write(sync); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	return w.sync()
}

// sync makes every record written before durable.
func (w *wal) sync() error {
	if !w.dirty {
		return nil
	}
	w.dirty = false
	if w.beforeSync != nil {
		w.beforeSync()
	}
	return fdatasync(w.f)
}

// write writes the pending records; ahead: the round is to be synced (it
// may write zeros ahead).
func (w *wal) write(ahead bool) error {
	w.cut()
	if w.vbytes > 0 {
		if w.zf != w.f {
			w.zf, w.zend = w.f, w.size // a rewrite's file: no zeros ahead
		}
		if end := w.size + w.vbytes; ahead && end > w.zend && w.vbytes <= walAheadRound {
			w.vecs = append(w.vecs, walZeros())
			w.zend = end + walAhead
		}
		if err := writeVecs(w.f, w.vecs, w.size); err != nil {
			return err
		}
		w.size += w.vbytes
		clear(w.vecs)
		w.vecs, w.vbytes, w.buf, w.mark = w.vecs[:0], 0, w.buf[:0], 0
		w.dirty = true
	}
	return nil
}

// release drops the kept data of entries up to index upTo (handed to
// apply): later reads come from the file.
func (g *groupLog) release(upTo uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	first := g.first()
	for i := max(g.released, first); i <= upTo && i-first < uint64(len(g.ents)); i++ {
		g.ents[i-first].data = nil
	}
	g.released = max(g.released, upTo+1)
}

// commit is the group's last saved commit index.
func (g *groupLog) commit() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hs.GetCommit()
}

func (w *wal) close() error { return w.f.Close() }

// --- raft.Storage for one group ---

func (g *groupLog) InitialState() (*pb.HardState, *pb.ConfState, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	hs := &pb.HardState{}
	if g.hs != nil {
		hs = &pb.HardState{Term: new(g.hs.GetTerm()), Vote: new(g.hs.GetVote()), Commit: new(g.hs.GetCommit())}
	}
	// A snapshot is committed: a hard state older than it (its record was
	// cut off after the snapshot's) is raised to it.
	if g.snap.realSnap() && hs.GetCommit() < g.snap.index {
		hs.Commit = new(g.snap.index)
		if hs.GetTerm() < g.snap.term {
			hs.Term, hs.Vote = new(g.snap.term), new(uint64(0))
		}
	}
	// A commit index past the log's end: a follower's round writes its
	// hard state before the entries it commits, and a torn write can keep
	// the one without the others. Raft refuses to start from it; a commit
	// index may be forgotten (the leader tells it again), so it is cut to
	// the log's end.
	if last := g.snap.index + uint64(len(g.ents)); hs.GetCommit() > last {
		hs.Commit = new(last)
	}
	return hs, g.confState(), nil
}

// confState is the configuration of the group's snapshot (g.mu held).
func (g *groupLog) confState() *pb.ConfState {
	if g.snap.cs != nil {
		return proto.Clone(g.snap.cs).(*pb.ConfState)
	}
	return &pb.ConfState{Voters: append([]uint64(nil), g.initial...)}
}

func (g *groupLog) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	g.mu.Lock()
	first := g.first()
	last := first + uint64(len(g.ents)) - 1
	if lo < first {
		g.mu.Unlock()
		return nil, raft.ErrCompacted
	}
	if hi > last+1 {
		g.mu.Unlock()
		return nil, raft.ErrUnavailable
	}
	locs := append([]entryLoc(nil), g.ents[lo-first:hi-first]...)
	f := g.w.f
	g.mu.Unlock()
	out := make([]*pb.Entry, 0, len(locs))
	var size uint64
	for i, l := range locs {
		size += uint64(l.n) + 16
		if i > 0 && size > maxSize {
			break
		}
		data := l.data
		if data == nil && l.n > 0 {
			data = make([]byte, l.n)
			if _, err := f.ReadAt(data, l.off); err != nil {
				return nil, fmt.Errorf("cluster: read raft entry %d: %w", lo+uint64(i), err)
			}
		}
		out = append(out, &pb.Entry{Term: new(l.term), Index: new(lo + uint64(i)), Type: l.typ.Enum(), Data: data})
	}
	return out, nil
}

func (g *groupLog) Term(i uint64) (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i == g.snap.index {
		return g.snap.term, nil
	}
	if i < g.snap.index {
		return 0, raft.ErrCompacted
	}
	if i-g.first() >= uint64(len(g.ents)) {
		return 0, raft.ErrUnavailable
	}
	return g.ents[i-g.first()].term, nil
}

func (g *groupLog) LastIndex() (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.snap.index + uint64(len(g.ents)), nil
}

func (g *groupLog) FirstIndex() (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.first(), nil
}

func (g *groupLog) Snapshot() (*pb.Snapshot, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.snap.index < g.snapNeed {
		return nil, raft.ErrSnapshotTemporarilyUnavailable // membership.go
	}
	return &pb.Snapshot{Data: g.snap.data, Metadata: &pb.SnapshotMetadata{Index: new(g.snap.index), Term: new(g.snap.term),
		ConfState: g.confState()}}, nil
}

// empty reports whether the group never stored anything (a new group).
func (g *groupLog) empty() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hs == nil && len(g.ents) == 0
}
