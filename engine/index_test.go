package engine

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// indexFixture is a topic "t" of a few sealed segments and an active one,
// closed cleanly.
func indexFixture(t *testing.T) (*vfs.MemFS, Options, *model, []*segment.Segment) {
	t.Helper()
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentBytes = 16 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 50 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 1+i%10, 100+i))
	}
	tp, _ := e.topic("t")
	segs := tp.segments()
	if len(segs) < 3 {
		t.Fatalf("%d segments, want at least 3", len(segs))
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return fs, opts, m, segs
}

// Promise: a clean restart trusts the segments and
// scans nothing (no index is rebuilt); a restart after a crash scans the
// segment that was active and rebuilds its index; both read the same.
func TestCleanRestartDoesNotScan(t *testing.T) {
	fs, opts, m, _ := indexFixture(t)
	rec := &logRecorder{}
	opts.Logger = rec.logger()
	e := openEngine(t, opts)
	if n := rec.count("rebuilt index"); n != 0 {
		t.Fatalf("clean restart rebuilt %d indexes: %q", n, rec.msgs)
	}
	m.check(t, e, "t", 0)
	m.appendBatch(t, e, "t", genMsgs(1e6, 4, 4))

	rec.reset()
	e2, _ := crashOpen(t, fs, opts) // the running engine removed the marker
	if n := rec.count("rebuilt index"); n != 1 {
		t.Fatalf("restart after a crash rebuilt %d indexes, want 1 (the active segment's): %q", n, rec.msgs)
	}
	m.check(t, e2, "t", 0)
}

// Promise: a missing or garbage index, of a sealed or of
// the active segment, never stops a restart, even a clean one: it is
// rebuilt from the log, reads are correct and appends continue densely.
func TestGarbageIndexRebuilt(t *testing.T) {
	entry := segment.EntrySize
	cases := []struct {
		name    string
		corrupt func(b []byte) []byte // nil: remove the file
	}{
		{"missing", nil},
		{"empty", func(b []byte) []byte { return b[:0] }},
		{"torn last entry", func(b []byte) []byte { return b[:len(b)-5] }},
		{"one entry short", func(b []byte) []byte { return b[:len(b)-entry] }},
		{"extra garbage entry", func(b []byte) []byte { return append(b, msgBytes(7, entry)...) }},
		{"zeroed", func(b []byte) []byte { clear(b); return b }},
		{"random bytes", func(b []byte) []byte { copy(b, msgBytes(8, len(b))); return b }},
		{"first entry garbage", func(b []byte) []byte { copy(b, msgBytes(9, entry)); return b }},
		{"last entry garbage", func(b []byte) []byte { copy(b[len(b)-entry:], msgBytes(10, entry)); return b }},
		{"last entry points one batch back", func(b []byte) []byte {
			copy(b[len(b)-entry:], b[len(b)-2*entry:len(b)-entry])
			return b
		}},
		{"last entry position off by 8", func(b []byte) []byte {
			p := b[len(b)-entry+4:]
			binary.LittleEndian.PutUint32(p, binary.LittleEndian.Uint32(p)+8)
			return b
		}},
	}
	for _, which := range []string{"sealed", "active"} {
		for _, tc := range cases {
			t.Run(which+"/"+tc.name, func(t *testing.T) {
				fs, opts, m, segs := indexFixture(t)
				s := segs[1]
				if which == "active" {
					s = segs[len(segs)-1]
				}
				idx := filepath.Join(s.Dir(), segment.IndexName(s.Base()))
				var err error
				if tc.corrupt == nil {
					err = fs.Remove(idx)
				} else {
					err = fs.Corrupt(idx, func(b []byte) []byte { return tc.corrupt(append([]byte(nil), b...)) })
				}
				if err != nil {
					t.Fatal(err)
				}
				rec := &logRecorder{}
				opts.Logger = rec.logger()
				e := openEngine(t, opts)
				if rec.count("rebuilt index") != 1 {
					t.Fatalf("want one rebuilt index: %q", rec.msgs)
				}
				info := describe(t, e, "t")
				if info.ReadOnly != nil || info.End != m.next || info.Segments != len(segs) {
					t.Fatalf("%+v, want all %d segments, end %d, writable", info, len(segs), m.next)
				}
				for off := uint64(0); off < m.next; off += 7 { // reads that start at every kind of place
					(&model{msgs: m.msgs, next: min(off+9, m.next)}).check(t, e, "t", off)
				}
				m.appendBatch(t, e, "t", genMsgs(1e6, 3, 3))
				e = reopen(t, e, opts)
				m.check(t, e, "t", 0)
			})
		}
	}
}
