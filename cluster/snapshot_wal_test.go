package cluster

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

func testEntries(first, n int, term uint64, size int) []*pb.Entry {
	var ents []*pb.Entry
	for i := range n {
		ents = append(ents, &pb.Entry{Term: new(term), Index: new(uint64(first + i)), Type: pb.EntryNormal.Enum(),
			Data: bytes.Repeat([]byte{byte(first + i)}, size)})
	}
	return ents
}

func checkEntries(t *testing.T, g *groupLog, lo, hi uint64) {
	t.Helper()
	got, err := g.Entries(lo, hi, 1<<30)
	if err != nil || uint64(len(got)) != hi-lo {
		t.Fatalf("entries [%d, %d): %d, %v", lo, hi, len(got), err)
	}
	for i, e := range got {
		if e.GetIndex() != lo+uint64(i) || !bytes.Equal(e.Data, bytes.Repeat([]byte{byte(lo + uint64(i))}, len(e.Data))) {
			t.Fatalf("entry %d: index %d, data %q...", lo+uint64(i), e.GetIndex(), e.Data[:min(8, len(e.Data))])
		}
	}
}

// A compacted group's log starts after its snapshot (older entries are
// ErrCompacted, its term and configuration are the snapshot's), and so it
// reopens; a rewrite keeps exactly the live records (the kept groups'
// snapshots, hard states and entries) in a file smaller than before, and
// drops the groups not kept.
func TestWALCompactionRewriteReopen(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	w, err := openWAL(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if !w.fresh {
		t.Fatal("a new raft log is not fresh")
	}
	w.saveEntries(7, testEntries(firstIndex, 100, 2, 1000))
	w.saveHardState(7, &pb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(101))})
	w.saveEntries(9, testEntries(firstIndex, 10, 1, 1000)) // a group not kept
	cs := &pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	w.saveSnapshot(7, snapMeta{index: 80, term: 2, cs: cs, data: []byte("snap")}, 0)
	if err := w.flush(true); err != nil {
		t.Fatal(err)
	}
	check := func(w *wal) {
		t.Helper()
		g := w.group(7)
		if fi, _ := g.FirstIndex(); fi != 81 {
			t.Fatalf("first index %d, want 81", fi)
		}
		if li, _ := g.LastIndex(); li != 101 {
			t.Fatalf("last index %d, want 101", li)
		}
		if _, err := g.Entries(80, 82, 1<<20); err == nil {
			t.Fatal("a compacted entry was returned")
		}
		if term, err := g.Term(80); err != nil || term != 2 {
			t.Fatalf("term at the snapshot: %d, %v", term, err)
		}
		checkEntries(t, g, 81, 102)
		snap, _ := g.Snapshot()
		if snap.GetMetadata().GetIndex() != 80 || string(snap.GetData()) != "snap" || len(snap.GetMetadata().GetConfState().GetLearners()) != 1 {
			t.Fatalf("snapshot %v", snap.GetMetadata())
		}
		hs, ics, _ := g.InitialState()
		if hs.GetCommit() != 101 || hs.GetVote() != 1 || len(ics.GetVoters()) != 3 {
			t.Fatalf("initial state %v %v", hs, ics)
		}
	}
	check(w)
	w.close()
	if w, err = openWAL(dir, log); err != nil {
		t.Fatal(err)
	}
	if w.fresh {
		t.Fatal("a raft log with records is fresh")
	}
	check(w)
	before := w.size
	if err := w.rewrite(func(gid uint64) bool { return gid == 7 }); err != nil {
		t.Fatal(err)
	}
	if w.size >= before/2 {
		t.Fatalf("rewrite: %d bytes, before %d", w.size, before)
	}
	check(w)
	// Appends after the rewrite land in the new file.
	w.saveEntries(7, testEntries(102, 5, 2, 1000))
	if err := w.flush(true); err != nil {
		t.Fatal(err)
	}
	w.close()
	if _, err := os.Stat(filepath.Join(dir, "wal.new")); !os.IsNotExist(err) {
		t.Fatalf("wal.new left behind: %v", err)
	}
	if w, err = openWAL(dir, log); err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if g := w.grp[9]; g != nil && len(g.ents) > 0 {
		t.Fatal("a group not kept survived the rewrite")
	}
	checkEntries(t, w.group(7), 81, 107)
	// A snapshot installed from the leader replaces the whole log, and a
	// hard state older than it is raised to it.
	w.saveSnapshot(7, snapMeta{index: 200, term: 3, data: []byte{}}, snapInstall)
	g := w.group(7)
	if fi, _ := g.FirstIndex(); fi != 201 {
		t.Fatalf("first index after an install %d, want 201", fi)
	}
	if li, _ := g.LastIndex(); li != 200 {
		t.Fatalf("last index after an install %d, want 200", li)
	}
	if hs, _, _ := g.InitialState(); hs.GetCommit() != 200 || hs.GetTerm() != 3 {
		t.Fatalf("hard state after an install %v", hs)
	}
}
