package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// tornFixture is a topic "t" whose active segment (not the first) ends with
// a known batch: the image a torn-tail test cuts.
type tornFixture struct {
	fs       *vfs.MemFS
	opts     Options
	m        *model
	log      string // the active segment's log
	lastPos  int    // position of the last batch in log
	logLen   int    // length of log
	lastBase uint64 // offset of the last batch
	lastMsgs [][]byte
}

func newTornFixture(t *testing.T) *tornFixture {
	t.Helper()
	f := &tornFixture{fs: vfs.NewMemFS(), m: newModel()}
	f.opts = noZeros(memOpts(f.fs)) // the tests cut and zero the log's last bytes
	f.opts.SegmentBytes = 64 << 10
	// The fixture's engine stays open while the tests take crash images of
	// its files: its synced-offset checkpoint must never come to cover the
	// last batch (that damage is then corruption, as it should be), however
	// long the tests take. With the default 1 s tick it did on a loaded
	// machine.
	f.opts.CheckpointInterval = time.Hour
	e := openEngine(t, f.opts)
	mustCreate(t, e, "t")
	for i := range 40 {
		f.m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 10, 200))
	}
	f.lastBase = f.m.next
	f.lastMsgs = [][]byte{msgBytes(1, 37), {}, msgBytes(2, 100), msgBytes(3, 1)}
	f.m.appendBatch(t, e, "t", f.lastMsgs)
	f.log = activeLog(t, e, "t")
	if describe(t, e, "t").Segments < 2 {
		t.Fatal("fixture should have rolled a segment")
	}
	data, err := f.fs.ReadFile(f.log)
	if err != nil {
		t.Fatal(err)
	}
	f.logLen = len(data)
	f.lastPos = f.logLen - len(batchOf(t, f.lastMsgs...))
	return f
}

// checkRecovered checks an engine opened on a damaged image: it holds
// exactly the batches before the last one, is writable, and the next
// append gets the last batch's offset.
func (f *tornFixture) checkRecovered(t *testing.T, e *Engine) {
	t.Helper()
	info := describe(t, e, "t")
	if info.End != f.lastBase || info.ReadOnly != nil {
		t.Fatalf("recovered %+v, want end %d and writable", info, f.lastBase)
	}
	m := &model{msgs: f.m.msgs, next: f.lastBase}
	m.check(t, e, "t", f.lastBase-100)
	if off := mustAppend(t, e, "t", batchOf(t, f.lastMsgs...)); off != f.lastBase {
		t.Fatalf("append after recovery got offset %d, want %d", off, f.lastBase)
	}
	m.next = f.lastBase + uint64(len(f.lastMsgs))
	m.check(t, e, "t", f.lastBase-100)
}

// Promise: the active segment's log cut at any byte of its
// last batch, after a crash or after a clean Close whose synced-offset
// checkpoint did not cover that batch, reopens at the last whole batch,
// says so in the log, stays writable, and the next append gets the right
// offset. (With the checkpoint covering it, the same cut is corruption:
// TestCutBelowCheckpointIsCorruption.)
func TestTornTailEveryByte(t *testing.T) {
	f := newTornFixture(t)
	images := map[string]*vfs.MemFS{"crash": f.fs.Crash()}
	closed := f.fs.Crash()
	{
		o := f.opts
		o.FS = closed
		if err := openEngine(t, o).Close(); err != nil {
			t.Fatal(err)
		}
		if err := closed.Remove(filepath.Join(o.Dir, checkpointName)); err != nil {
			t.Fatal(err)
		}
		if err := closed.SyncDir(o.Dir); err != nil {
			t.Fatal(err)
		}
	}
	images["clean"] = closed
	for name, img := range images {
		for cut := f.lastPos; cut < f.logLen; cut++ {
			c := img.Crash()
			if err := c.Corrupt(f.log, func(b []byte) []byte { return append([]byte(nil), b[:cut]...) }); err != nil {
				t.Fatal(err)
			}
			rec := &logRecorder{}
			o := f.opts
			o.FS, o.Logger = c, rec.logger()
			e, err := Open(o)
			if err != nil {
				t.Fatalf("%s image cut at %d: %v", name, cut, err)
			}
			f.checkRecovered(t, e)
			if got, want := rec.count("cut torn tail"), min(cut-f.lastPos, 1); got != want {
				t.Fatalf("%s image cut at %d: %d torn-tail reports, want %d", name, cut, got, want)
			}
			e.Close()
		}
	}
}

// Promise (damage below the synced offset is corruption, never
// a torn tail): after a clean Close the checkpoint records every offset as
// synced, so a cut inside the last batch leaves the topic read-only with
// the log untouched instead of cutting acknowledged data.
func TestCutBelowCheckpointIsCorruption(t *testing.T) {
	f := newTornFixture(t)
	img := f.fs.Crash()
	o := f.opts
	o.FS = img
	if err := openEngine(t, o).Close(); err != nil {
		t.Fatal(err)
	}
	cut := f.lastPos + 10
	if err := img.Corrupt(f.log, func(b []byte) []byte { return append([]byte(nil), b[:cut]...) }); err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, o)
	info := describe(t, e, "t")
	if info.ReadOnly == nil || !errors.Is(info.ReadOnly, ErrCorrupt) {
		t.Fatalf("%+v: want read-only with ErrCorrupt", info)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := img.ReadFile(f.log); len(b) != cut {
		t.Fatalf("log is %d bytes, want the damaged %d left as they were", len(b), cut)
	}
}

// Promise: zero-filled sectors over the end of the last
// batch (the file keeps its length) are a torn write too: cut, not
// corruption.
func TestTornTailZeroed(t *testing.T) {
	f := newTornFixture(t)
	for from := f.lastPos; from < f.logLen; from += 7 {
		c := f.fs.Crash()
		err := c.Corrupt(f.log, func(b []byte) []byte {
			b = append([]byte(nil), b...)
			clear(b[from:])
			return append(b, make([]byte, 4096)...) // and a zeroed sector past it
		})
		if err != nil {
			t.Fatal(err)
		}
		o := f.opts
		o.FS = c
		e, err := Open(o)
		if err != nil {
			t.Fatalf("zeroed from %d: %v", from, err)
		}
		f.checkRecovered(t, e)
		e.Close()
	}
}

// Promise: the same on real files: a log cut with
// os.Truncate after Close (the checkpoint removed, as after a crash that
// came before it covered the last batch) recovers to the last whole batch.
func TestTornTailOSFS(t *testing.T) {
	msgs := [][]byte{msgBytes(1, 300), msgBytes(2, 5)}
	size := len(batchOf(t, msgs...))
	for _, cut := range []int{1, 8, 63, 64, 65, size / 2, size - 1} {
		opts := osOpts(t)
		opts.Fsync = FsyncNever
		e := openEngine(t, opts)
		mustCreate(t, e, "t")
		m := newModel()
		for i := range 5 {
			m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 10, 50))
		}
		good := m.next
		mustAppend(t, e, "t", batchOf(t, msgs...))
		log := activeLog(t, e, "t")
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(log)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(log, st.Size()-int64(size)+int64(cut)); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(opts.Dir, checkpointName)); err != nil {
			t.Fatal(err)
		}
		e = openEngine(t, opts)
		if end := endOf(t, e, "t"); end != good {
			t.Fatalf("cut %d: end %d, want %d", cut, end, good)
		}
		m.check(t, e, "t", 0)
		m.appendBatch(t, e, "t", msgs)
		m.check(t, e, "t", 0)
		if st2, _ := os.Stat(log); st2.Size() != st.Size() {
			t.Fatalf("cut %d: log is %d bytes after re-append, want %d", cut, st2.Size(), st.Size())
		}
	}
}

// corruptActive builds a topic of six 10-message batches in one segment,
// closes it cleanly or not, and returns an image whose batch 2 has a
// flipped payload bit, with the log's path and the model.
func corruptActive(t *testing.T, clean bool) (*vfs.MemFS, Options, string, *model) {
	t.Helper()
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	var sizes []int
	for i := range 6 {
		msgs := genMsgs(uint64(i)*10, 10, 40)
		sizes = append(sizes, len(batchOf(t, msgs...)))
		m.appendBatch(t, e, "t", msgs)
	}
	log := activeLog(t, e, "t")
	if clean {
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	} else if err := e.WriteCheckpoint(); err != nil {
		// The damage is below the synced offset: past it, the active
		// segment's tail would be torn.
		t.Fatal(err)
	}
	img := fs.Crash()
	flip := sizes[0] + sizes[1] + 64 + 20 // inside batch 2's payload
	if err := img.Corrupt(log, func(b []byte) []byte { b[flip] ^= 0x10; return b }); err != nil {
		t.Fatal(err)
	}
	opts.FS = img
	return img, opts, log, m
}

// Promise (torn vs corruption): after a crash, a bad
// checksum followed by a valid batch is corruption: the topic opens
// read-only (Describe says why, Append fails with ErrReadOnly), every batch
// but the damaged one stays readable, reads of the damaged offsets fail with
// ErrCorrupt, and the log is never cut, on this open or the next.
func TestBadChecksumBeforeValidBatchIsCorruption(t *testing.T) {
	img, opts, log, m := corruptActive(t, false)
	before, _ := img.ReadFile(log)
	for round := range 2 { // the second open sees what the first left
		e := openEngine(t, opts)
		info := describe(t, e, "t")
		if info.ReadOnly == nil || !errors.Is(info.ReadOnly, ErrReadOnly) || !errors.Is(info.ReadOnly, ErrCorrupt) {
			t.Fatalf("round %d: ReadOnly = %v, want ErrReadOnly and ErrCorrupt", round, info.ReadOnly)
		}
		if info.End != 60 {
			t.Fatalf("round %d: end %d, want 60 (the batches after the damage stay indexed)", round, info.End)
		}
		_, err := e.Append(t.Context(), "t", batchOf(t, msgBytes(9, 9)))
		if !errors.Is(err, ErrReadOnly) {
			t.Fatalf("round %d: Append = %v, want ErrReadOnly", round, err)
		}
		(&model{msgs: m.msgs, next: 20}).check(t, e, "t", 0)
		m.check(t, e, "t", 30)
		var res ReadResult
		for _, off := range []uint64{20, 25, 29} {
			if err := e.Read("t", off, 1, 1<<20, &res); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offsets 20..29") {
				t.Fatalf("round %d: Read(%d) = %v, want ErrCorrupt naming offsets 20..29", round, off, err)
			}
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		after, _ := img.ReadFile(log)
		if !bytes.Equal(before, after) {
			t.Fatalf("round %d: the damaged log was changed (%d -> %d bytes)", round, len(before), len(after))
		}
	}
}

// Promise (clean restart trusts, reads verify): after a clean Close the
// active segment is not scanned, so the same flip is not found at open; it
// is found by the Read that would serve it (ErrCorrupt), never served, and
// the open leaves the log alone.
func TestBadChecksumAfterCleanCloseCaughtOnRead(t *testing.T) {
	img, opts, log, m := corruptActive(t, true)
	before, _ := img.ReadFile(log)
	e := openEngine(t, opts)
	if info := describe(t, e, "t"); info.End != 60 {
		t.Fatalf("%+v: want the trusted end 60", info)
	}
	var res ReadResult
	for _, off := range []uint64{20, 25, 29} {
		if err := e.Read("t", off, 1, 1<<20, &res); !errors.Is(err, ErrCorrupt) || len(res.Chunks) != 0 {
			t.Fatalf("Read(%d) = %v with %d chunks, want ErrCorrupt", off, err, len(res.Chunks))
		}
	}
	(&model{msgs: m.msgs, next: 20}).check(t, e, "t", 0)
	m.check(t, e, "t", 30)
	if after, _ := img.ReadFile(log); !bytes.Equal(before, after) {
		t.Fatal("the open changed the damaged log")
	}
}

// Promise: a bit flip in a sealed segment (trusted at open,
// not scanned) is caught when read: the read fails with ErrCorrupt naming
// the offsets; batches before it, other segments and appends are fine.
func TestSealedSegmentBitFlipCaughtOnRead(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentBytes = 16 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	var size int
	for i := range 40 {
		msgs := genMsgs(uint64(i)*10, 10, 100)
		size = len(batchOf(t, msgs...))
		m.appendBatch(t, e, "t", msgs)
	}
	tp, _ := e.topic("t")
	first := tp.segments()[0]
	log := filepath.Join(first.Dir(), segment.LogName(0))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Corrupt(log, func(b []byte) []byte { b[3*size+100] ^= 1; return b }); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, opts)
	if info := describe(t, e, "t"); info.ReadOnly != nil || info.End != m.next {
		t.Fatalf("%+v: a sealed segment is trusted at open", info)
	}
	var res ReadResult
	err := e.Read("t", 30, 1, 1<<20, &res)
	if !errors.Is(err, ErrCorrupt) || len(res.Chunks) != 0 {
		t.Fatalf("read of the flipped batch: %v, %d chunks; want ErrCorrupt", err, len(res.Chunks))
	}
	t.Logf("read error: %v", err)
	m.check(t, e, "t", first.Next())
	(&model{msgs: m.msgs, next: 30}).check(t, e, "t", 0)
	m.appendBatch(t, e, "t", genMsgs(1e6, 3, 3))
	m.check(t, e, "t", first.Next())
}

// Promise: a topic whose first segment is damaged
// beyond use (a sealed log cut short) does not keep the engine or the
// other topics offline; its files are left alone, and CreateTopic does not
// mix a new topic into them.
func TestDamagedTopicLeftOffline(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentBytes = 8 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "bad")
	mustCreate(t, e, "good")
	m := newModel()
	for i := range 20 {
		mustAppend(t, e, "bad", batchOf(t, genMsgs(uint64(i), 5, 200)...))
		m.appendBatch(t, e, "good", genMsgs(uint64(i), 5, 200))
	}
	tp, _ := e.topic("bad")
	log := filepath.Join(tp.dir, segment.LogName(0))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Corrupt(log, func(b []byte) []byte { return b[:len(b)-8] }); err != nil {
		t.Fatal(err)
	}
	before, _ := fs.List(tp.dir)
	rec := &logRecorder{}
	opts.Logger = rec.logger()
	e = openEngine(t, opts)
	m.check(t, e, "good", 0)
	m.appendBatch(t, e, "good", genMsgs(99, 1, 1))
	if _, err := e.Describe("bad"); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("Describe(bad) = %v, want ErrTopicNotFound", err)
	}
	if rec.count("left offline") != 1 {
		t.Fatalf("log: %q", rec.msgs)
	}
	if err := e.CreateTopic("bad"); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("CreateTopic over the damaged topic's files = %v, want ErrTopicExists", err)
	}
	if after, _ := fs.List(tp.dir); len(after) != len(before) {
		t.Fatalf("files of the damaged topic changed: %q -> %q", before, after)
	}
}
