package cluster

import (
	"bytes"
	"log/slog"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Entries Raft asks for right after appending them (to apply them once
// committed) are handed over from memory, not read back from the Raft log
// file; once released (handed to apply) they are read from the file, and
// both give the bytes that were appended.
func TestWALKeepsEntriesUntilReleased(t *testing.T) {
	dir := t.TempDir()
	w, err := openWAL(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	var ents []*pb.Entry
	for i := range 3 {
		ents = append(ents, &pb.Entry{Term: new(uint64(1)), Index: new(uint64(firstIndex + i)), Type: pb.EntryNormal.Enum(),
			Data: bytes.Repeat([]byte{byte('a' + i)}, 100)})
	}
	w.saveEntries(7, ents)
	if err := w.flush(true); err != nil {
		t.Fatal(err)
	}
	g := w.group(7)
	// Overwrite the file's copy: an entry still kept must not be read
	// from it.
	st, _ := w.f.Stat()
	if _, err := w.f.WriteAt(make([]byte, st.Size()), 0); err != nil {
		t.Fatal(err)
	}
	got, err := g.Entries(firstIndex, firstIndex+3, 1<<20)
	if err != nil || len(got) != 3 {
		t.Fatalf("entries: %d, %v", len(got), err)
	}
	for i, e := range got {
		if !bytes.Equal(e.Data, ents[i].Data) {
			t.Fatalf("entry %d read back from the file, not kept: %q", i, e.Data[:8])
		}
	}
	// Released entries come from the file (zeroed above).
	g.release(firstIndex + 1)
	got, err = g.Entries(firstIndex, firstIndex+3, 1<<20)
	if err != nil || len(got) != 3 {
		t.Fatalf("entries: %d, %v", len(got), err)
	}
	if !bytes.Equal(got[0].Data, make([]byte, 100)) || !bytes.Equal(got[1].Data, make([]byte, 100)) || !bytes.Equal(got[2].Data, ents[2].Data) {
		t.Fatalf("after release: %q %q %q", got[0].Data[:4], got[1].Data[:4], got[2].Data[:4])
	}
}

// Applying an entry copies its batches (the engine stamps them in place)
// into one buffer kept for the next entry: no allocation per batch once
// the buffer is large enough, and the copies do not alias the entry.
func TestApplyStagesBatchesWithoutAllocating(t *testing.T) {
	g := &group{}
	batches := [][]byte{bytes.Repeat([]byte{1}, 1000), bytes.Repeat([]byte{2}, 500), bytes.Repeat([]byte{3}, 2000)}
	allocs := testing.AllocsPerRun(100, func() {
		buf := g.stage(batches)
		for _, b := range batches {
			c := buf.next(b)
			c[0] = 9 // the engine stamps its copy
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per entry", allocs)
	}
	for i, b := range batches {
		if b[0] == 9 {
			t.Fatalf("batch %d: the copy aliases the entry", i)
		}
	}
}
