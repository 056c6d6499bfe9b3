package cluster

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Small synced rounds (one produce at a time) overwrite zeros written
// ahead inside the Raft log file instead of growing it, so that their
// fdatasync writes their data alone, not also the file's size; the zeros
// end the log at open without being taken for a torn record, every
// synced record is replayed, and the log goes on right after the last one.
func TestWALSmallRoundsOverwriteZerosAhead(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	w, err := openWAL(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	const gid = 4
	size := func() int64 {
		t.Helper()
		st, err := os.Stat(filepath.Join(dir, "wal"))
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	next := firstIndex
	round := func(w *wal) {
		t.Helper()
		w.saveEntries(gid, testEntries(next, 1, 2, 300))
		w.saveHardState(gid, &pb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(next))})
		next++
		if err := w.flush(true); err != nil {
			t.Fatal(err)
		}
	}
	round(w)
	first := size()
	if first < w.size+walAhead {
		t.Fatalf("after a small synced round the file holds %d bytes for a log of %d: nothing written ahead", first, w.size)
	}
	for range 50 {
		round(w)
	}
	if got := size(); got != first {
		t.Fatalf("50 small synced rounds grew the file from %d to %d bytes", first, got)
	}
	end := w.size
	w.close()

	w, err = openWAL(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if w.size != end || size() != first {
		t.Fatalf("reopened: log end %d (want %d), file %d bytes (want %d, the zeros kept)", w.size, end, size(), first)
	}
	checkEntries(t, w.group(gid), firstIndex, uint64(next))
	round(w)
	w.close()

	// A round torn by a power loss left part of a record in the zeros:
	// the log ends before it and the file is cut there.
	w, err = openWAL(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, w.group(gid), firstIndex, uint64(next))
	end = w.size
	w.close()
	f, err := os.OpenFile(filepath.Join(dir, "wal"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := bytes.Repeat([]byte{0x5a}, 100)
	torn[0] = 200 // a length the bytes after it do not fill with a good CRC
	if _, err := f.WriteAt(torn, end); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w, err = openWAL(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if w.size != end || size() != end {
		t.Fatalf("after a torn record: log end %d, file %d bytes, want both %d", w.size, size(), end)
	}
	checkEntries(t, w.group(gid), firstIndex, uint64(next))
	round(w)
	checkEntries(t, w.group(gid), firstIndex, uint64(next))
}
