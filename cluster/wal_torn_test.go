package cluster

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// A node restarts, without a panic, after a power loss tore its Raft log's
// last write: a follower's round writes the hard state (whose commit
// already covers the entries the leader just sent) and then those entries,
// in one write; when only the hard-state record reached the disk, the
// replayed commit index lies past the log's end. Raft refuses to start
// from such a state (it panics), so the node could never start again; a
// commit index may be forgotten (the leader tells it again), so the log
// must start from one within the log.
func TestWALTornAfterHardStateRestarts(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	w, err := openWAL(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	const gid = 5
	w.saveEntries(gid, testEntries(firstIndex, 3, 2, 100)) // an earlier round: 2..4
	w.saveHardState(gid, &pb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(3))})
	if err := w.flush(true); err != nil {
		t.Fatal(err)
	}
	whole := w.size
	// The next round, in the order the node loop queues it (node.go
	// ready): the hard state, then the entries it commits.
	w.saveHardState(gid, &pb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(14))})
	hsEnd := whole + int64(len(w.buf))
	w.saveEntries(gid, testEntries(firstIndex+3, 10, 2, 100)) // 5..14
	if err := w.flush(true); err != nil {
		t.Fatal(err)
	}
	w.close()
	// The power loss: the hard-state record and the start of the entries
	// record reached the disk.
	if err := os.Truncate(filepath.Join(dir, "wal"), hsEnd+20); err != nil {
		t.Fatal(err)
	}
	w, err = openWAL(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	g := w.group(gid)
	g.initial = []uint64{1, 2, 3}
	if last, _ := g.LastIndex(); last != 4 {
		t.Fatalf("last index after the torn write %d, want 4", last)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("raft refused the replayed log: %v", r)
		}
	}()
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: g,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16, Logger: raftLogger{log}})
	if err != nil {
		t.Fatal(err)
	}
	if st := rn.BasicStatus(); st.GetTerm() != 2 || st.GetCommit() > 4 {
		t.Fatalf("term %d commit %d after restart, want term 2 and a commit within the log (<= 4)", st.GetTerm(), st.GetCommit())
	}
}
