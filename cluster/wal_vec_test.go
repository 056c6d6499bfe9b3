package cluster

import (
	"bytes"
	"log/slog"
	"testing"
	"unsafe"

	pb "go.etcd.io/raft/v3/raftpb"
)

func walEntries(first uint64, sizes ...int) []*pb.Entry {
	var ents []*pb.Entry
	for i, n := range sizes {
		var d []byte
		if n > 0 {
			d = pattern(n, byte(i))
		}
		ents = append(ents, &pb.Entry{Term: new(uint64(2)), Index: new(first + uint64(i)), Type: pb.EntryNormal.Enum(), Data: d})
	}
	return ents
}

// The Raft log writes a large entry's data from the entry itself (a
// vector of its own in one pwritev), not copied into the record buffer
// first.
func TestWALWritesLargeEntriesWithoutCopy(t *testing.T) {
	w, err := openWAL(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	ents := walEntries(firstIndex, 100, 64<<10)
	w.saveEntries(7, ents)
	w.cut()
	found := false
	for _, v := range w.vecs {
		if unsafe.SliceData(v) == unsafe.SliceData(ents[1].Data) && len(v) == len(ents[1].Data) {
			found = true
		}
	}
	if !found {
		t.Fatal("the large entry's data was copied into the record buffer")
	}
}

// What the Raft log writes (entries small and large, empty ones, hard
// states, a tail replaced by a later append) reads back the same from the
// file, and from a replay after a restart.
func TestWALVectoredRecordsReadBack(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	w, err := openWAL(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	a := walEntries(firstIndex, 10, 5000, 0, 4095, 4096, 300_000, 1)
	w.saveEntries(7, a)
	w.saveHardState(7, &pb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(firstIndex + 3))})
	b := walEntries(firstIndex, 70_000, 20)
	w.saveEntries(9, b)
	if err := w.flush(true); err != nil {
		t.Fatal(err)
	}
	// A later append replaces group 7's tail from its fifth entry on.
	c := walEntries(firstIndex+4, 8192, 7)
	for _, e := range c {
		e.Term = new(uint64(3))
	}
	w.saveEntries(7, c)
	if err := w.flush(true); err != nil {
		t.Fatal(err)
	}
	want7 := append(append([]*pb.Entry(nil), a[:4]...), c...)
	check := func(w *wal, what string) {
		t.Helper()
		for gid, want := range map[uint64][]*pb.Entry{7: want7, 9: b} {
			g := w.group(gid)
			g.release(firstIndex + uint64(len(want))) // read from the file
			got, err := g.Entries(firstIndex, firstIndex+uint64(len(want)), 1<<30)
			if err != nil || len(got) != len(want) {
				t.Fatalf("%s: group %d: %d entries, %v", what, gid, len(got), err)
			}
			for i, e := range got {
				if e.GetTerm() != want[i].GetTerm() || e.GetIndex() != want[i].GetIndex() || !bytes.Equal(e.Data, want[i].Data) {
					t.Fatalf("%s: group %d entry %d: term %d index %d, %d bytes; want %d %d, %d bytes", what, gid, i,
						e.GetTerm(), e.GetIndex(), len(e.Data), want[i].GetTerm(), want[i].GetIndex(), len(want[i].Data))
				}
			}
		}
	}
	check(w, "written")
	size := w.size
	w.close()
	w, err = openWAL(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if w.size != size {
		t.Fatalf("replay kept %d of %d bytes", w.size, size)
	}
	if hs, _, _ := w.group(7).InitialState(); hs.GetCommit() != firstIndex+3 || hs.GetTerm() != 2 {
		t.Fatalf("hard state after replay: %v", hs)
	}
	check(w, "replayed")
}

// A Raft log rewrite keeps every group's entries, large and small, the
// same (and so after a restart), and takes the entries still kept in
// memory from memory: they are not read back from the old file (which is
// zeroed here first; a read would copy zeros into the new one).
func TestWALRewriteVectoredAndFromMemory(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	w, err := openWAL(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	a := walEntries(firstIndex, 10, 70_000, 0, 5000, 300_000)
	w.saveEntries(7, a)
	w.saveHardState(7, &pb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(firstIndex + 1))})
	b := walEntries(firstIndex, 9000, 4)
	w.saveEntries(9, b)
	if err := w.flush(true); err != nil {
		t.Fatal(err)
	}
	// Group 7's first two entries were handed to apply (their data is
	// released: only the file has them); everything else is kept.
	w.group(7).release(firstIndex + 1)
	st, _ := w.f.Stat()
	old := make([]byte, st.Size())
	if _, err := w.f.ReadAt(old, 0); err != nil {
		t.Fatal(err)
	}
	// Zero the old file but the released entries' bytes.
	zero := make([]byte, st.Size())
	for _, l := range w.group(7).ents[:2] {
		copy(zero[l.off:l.off+int64(l.n)], old[l.off:l.off+int64(l.n)])
	}
	if _, err := w.f.WriteAt(zero, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.rewrite(func(uint64) bool { return true }); err != nil {
		t.Fatal(err)
	}
	check := func(w *wal, what string) {
		t.Helper()
		for gid, want := range map[uint64][]*pb.Entry{7: a, 9: b} {
			g := w.group(gid)
			g.release(firstIndex + uint64(len(want))) // read from the (new) file
			got, err := g.Entries(firstIndex, firstIndex+uint64(len(want)), 1<<30)
			if err != nil || len(got) != len(want) {
				t.Fatalf("%s: group %d: %d entries, %v", what, gid, len(got), err)
			}
			for i, e := range got {
				if e.GetTerm() != want[i].GetTerm() || !bytes.Equal(e.Data, want[i].Data) {
					t.Fatalf("%s: group %d entry %d: term %d, %d bytes differ from the %d appended", what, gid, i, e.GetTerm(), len(e.Data), len(want[i].Data))
				}
			}
		}
	}
	check(w, "rewritten")
	w.close()
	if w, err = openWAL(dir, quiet); err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if hs, _, _ := w.group(7).InitialState(); hs.GetCommit() != firstIndex+1 || hs.GetVote() != 1 {
		t.Fatalf("hard state after the rewrite and a restart: %v", hs)
	}
	check(w, "reopened")
}
