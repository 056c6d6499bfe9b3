package engine

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// fileLen returns the length of the file at path on fs.
func fileLen(t *testing.T, fs *vfs.MemFS, path string) int64 {
	t.Helper()
	b, err := fs.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b))
}

// TestZeroAheadCrashKeepsAcknowledged: under fsync=always (the default) the
// active log carries zeros after its last batch; an acknowledged message is
// never lost when the process dies then: the reopened engine holds every
// acknowledged message, reports no torn write, logs the zeros it cut and
// appends at the next offset.
func TestZeroAheadCrashKeepsAcknowledged(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	m.appendBatch(t, e, "t", genMsgs(0, 3, 50))
	first := fileLen(t, fs, activeLog(t, e, "t"))
	if data := describe(t, e, "t").Bytes; first <= data || first > data+segment.MaxZeroAhead {
		t.Fatalf("active log file is %d bytes after the first append of %d, want zeros after it, at most %d", first, data, segment.MaxZeroAhead)
	}
	for i := 1; i < 40; i++ {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*3, 3, 50))
	}
	if got := fileLen(t, fs, activeLog(t, e, "t")); got != first {
		t.Fatalf("active log file is %d bytes after appends into the zeros, want %d unchanged", got, first)
	}
	rec := &logRecorder{}
	o := opts
	o.Logger = rec.logger()
	c, cfs := crashOpen(t, fs, o)
	m.check(t, c, "t", 0)
	if n := rec.count("cut torn tail"); n != 0 {
		t.Fatalf("%d torn-tail reports after a crash with zeros ahead, want 0", n)
	}
	if n := rec.count("cut zeros after the log"); n != 1 {
		t.Fatalf("%d reports of zeros cut, want 1", n)
	}
	if st := c.Stats(); st.TornBytes != 0 || st.CorruptionsFound != 0 {
		t.Fatalf("stats after the reopen: torn %d, corruptions %d; want none", st.TornBytes, st.CorruptionsFound)
	}
	m.appendBatch(t, c, "t", genMsgs(1000, 2, 50))
	m.check(t, c, "t", 0)
	if got, data := fileLen(t, cfs, activeLog(t, c, "t")), describe(t, c, "t").Bytes; got <= data {
		t.Fatalf("active log file is %d bytes after the first append since the reopen, holding %d: want zeros after them", got, data)
	}
}

// TestZeroAheadCleanCloseCutsZeros: a clean close leaves the active log
// ending at its last batch, so that the next open trusts its index without
// a scan.
func TestZeroAheadCleanCloseCutsZeros(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 5 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*3, 3, 50))
	}
	path, data := activeLog(t, e, "t"), describe(t, e, "t").Bytes
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileLen(t, fs, path); got != data {
		t.Fatalf("active log file is %d bytes after a clean close, want %d", got, data)
	}
	rec := &logRecorder{}
	o := opts
	o.Logger = rec.logger()
	r := openEngine(t, o)
	m.check(t, r, "t", 0)
	if n := rec.count("rebuilt index") + rec.count("cut"); n != 0 {
		t.Fatalf("clean reopen rebuilt or cut %d times, want a trusted index", n)
	}
}

// TestZeroAheadOnlyUnderFsyncAlways: the other policies do not sync on the
// acknowledgement's path and write no zeros; neither does ZeroAhead < 0.
func TestZeroAheadOnlyUnderFsyncAlways(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Options)
	}{
		{"interval", func(o *Options) { o.Fsync = FsyncInterval }},
		{"never", func(o *Options) { o.Fsync = FsyncNever }},
		{"always-off", func(o *Options) { o.ZeroAhead = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMemFS()
			opts := memOpts(fs)
			tc.set(&opts)
			e := openEngine(t, opts)
			mustCreate(t, e, "t")
			m := newModel()
			m.appendBatch(t, e, "t", genMsgs(0, 3, 50))
			if got, want := fileLen(t, fs, activeLog(t, e, "t")), describe(t, e, "t").Bytes; got != want {
				t.Fatalf("active log file is %d bytes, want %d (no zeros)", got, want)
			}
		})
	}
}

// TestZeroAheadDiskFull: appends go into the zeros written ahead without
// needing new space, and once past them a full disk refuses the append
// with ErrStorage wrapping ENOSPC, acknowledging nothing and leaving no
// partial batch; with room again the topic goes on, and a crash after it
// all loses nothing acknowledged.
func TestZeroAheadDiskFull(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.ZeroAhead = 16 << 10 // so that a few appends pass it
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	m.appendBatch(t, e, "t", genMsgs(0, 3, 50))
	path := activeLog(t, e, "t")
	zeroEnd := fileLen(t, fs, path)
	if zeroEnd <= describe(t, e, "t").Bytes {
		t.Fatal("no zeros ahead: the test would prove nothing")
	}
	used := int64(0)
	for _, n := range []string{path, path[:len(path)-len(".log")] + ".idx"} {
		if b, err := fs.ReadFile(n); err == nil {
			used += int64(len(b))
		}
	}
	fs.SetCapacity(used) // no byte more than the files hold now
	for describe(t, e, "t").Bytes+2000 < zeroEnd {
		m.appendBatch(t, e, "t", genMsgs(m.next, 3, 50)) // inside the zeros: no new space
	}
	var err error
	for i := range 100 { // past the zeros: the file must grow
		before := describe(t, e, "t").Bytes
		msgs := genMsgs(1e6+uint64(i)*3, 3, 50)
		var off uint64
		if off, err = e.Append(context.Background(), "t", batchOf(t, msgs...)); err != nil {
			if got := describe(t, e, "t").Bytes; got != before {
				t.Fatalf("a refused append moved the log from %d to %d bytes", before, got)
			}
			break
		}
		if off != m.next {
			t.Fatalf("append got offset %d, want %d", off, m.next)
		}
		for j, msg := range msgs {
			m.msgs[off+uint64(j)] = msg
		}
		m.next += uint64(len(msgs))
	}
	if !errors.Is(err, ErrStorage) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append past the zeros on a full disk = %v, want ErrStorage wrapping ENOSPC", err)
	}
	m.check(t, e, "t", 0)
	fs.SetCapacity(0)
	m.appendBatch(t, e, "t", genMsgs(2e6, 3, 50))
	m.check(t, e, "t", 0)
	c, _ := crashOpen(t, fs, opts)
	m.check(t, c, "t", 0)
}

// TestZeroAheadFencedVolumeNotCorrupt: a volume fenced while its copy of a
// topic's active log ended in zeros written ahead keeps them (a fenced
// volume is not written), and the topic goes on on the others. At the next
// open that copy ends in zeros short of the synced offset: it is a copy
// left behind, caught up from a mirror holding more, and is not reported
// as corruption (no damaged-segment error, no corruption counted) — as a
// copy that simply ended there never was. With no mirror holding more, the
// same copy is damage: the topic opens read-only with ErrCorrupt, never
// hiding acknowledged messages.
func TestZeroAheadFencedVolumeNotCorrupt(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := mirrorOpts(fs, "/v1", "/v2")
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 3 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*3, 3, 50))
	}
	v2Log := filepath.Join("/v2", topicsDir, "t", segment.LogName(0))
	if fileLen(t, fs, v2Log) <= describe(t, e, "t").Bytes {
		t.Fatal("no zeros ahead on v2: the test would prove nothing")
	}
	e.fenceVolume(e.vols[1], errors.New("test: fenced while idle"))
	for i := 3; i < 6; i++ {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*3, 3, 50)) // v1 alone
	}
	if err := e.WriteCheckpoint(); err != nil {
		t.Fatal(err)
	}
	img := fs.Crash()
	for _, crash := range []bool{true, false} {
		rec := &logRecorder{}
		o := opts
		o.Logger = rec.logger()
		var c *Engine
		if crash {
			c, _ = crashOpen(t, fs, o)
		} else {
			e = reopen(t, e, o)
			c = e
		}
		m.check(t, c, "t", 0)
		if st := c.Stats(); st.CorruptionsFound != 0 || st.SegmentsRepaired != 1 {
			t.Fatalf("crash %v: stats %+v, want no corruption and v2's copy caught up", crash, st)
		}
		if n := rec.count("damaged segment"); n != 0 {
			t.Fatalf("crash %v: %d damaged-segment errors for a copy left behind by a fence", crash, n)
		}
		if info := describe(t, c, "t"); info.ReadOnly != nil {
			t.Fatalf("crash %v: topic read-only: %v", crash, info.ReadOnly)
		}
	}
	// v2's copy alone (v1's files of the topic lost, its checkpoint
	// kept): acknowledged messages are missing from every copy, which the
	// open says.
	for _, n := range []string{segment.LogName(0), segment.IndexName(0)} {
		if err := img.Remove(filepath.Join("/v1", topicsDir, "t", n)); err != nil {
			t.Fatal(err)
		}
	}
	o := opts
	o.FS = img
	c := openEngine(t, o)
	if info := describe(t, c, "t"); !errors.Is(info.ReadOnly, ErrCorrupt) {
		t.Fatalf("v2's short copy alone: %+v, want read-only with ErrCorrupt", info)
	}
	if st := c.Stats(); st.CorruptionsFound == 0 {
		t.Fatalf("v2's short copy alone: stats %+v, want the corruption counted", st)
	}
}

// TestZeroAheadFencedLeftoverNotCorrupt: the same copy left behind by a
// fence, once truncation removed its segments from the other volumes, is a
// leftover below the topic's start: at the next open it is dropped (and
// reported as such), not reported as a damaged segment nor counted as a
// corruption.
func TestZeroAheadFencedLeftoverNotCorrupt(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := mirrorOpts(fs, vols3...)
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 10 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*4, 4, 100))
	}
	e.fenceVolume(e.vols[1], errors.New("test: fenced while idle"))
	for i := range 120 { // several rolls without v2
		m.appendBatch(t, e, "t", genMsgs(1000+uint64(i)*4, 4, 100))
	}
	start, err := e.TruncateBefore(context.Background(), "t", 300)
	if err != nil || start <= 40 {
		t.Fatalf("TruncateBefore = %d, %v; want a start above v2's data", start, err)
	}
	if err := e.WriteCheckpoint(); err != nil {
		t.Fatal(err)
	}
	rec := &logRecorder{}
	o := opts
	o.Logger = rec.logger()
	c, _ := crashOpen(t, fs, o)
	m.check(t, c, "t", start)
	if rec.count("only volumes out of date hold") != 1 {
		t.Fatalf("leftovers not reported: %q", rec.msgs)
	}
	if st := c.Stats(); st.CorruptionsFound != 0 || rec.count("damaged segment") != 0 {
		t.Fatalf("stats %+v, %d damaged-segment errors: a leftover of a fenced volume reported as corruption", st, rec.count("damaged segment"))
	}
}
