package engine

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// Promise: a batch of 1, 1,000 or 100,000 messages comes back from Read
// message for message, before and after a clean restart, on real files.
func TestRoundTripBatchSizes(t *testing.T) {
	for _, n := range []int{1, 1000, 100_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			opts := osOpts(t)
			opts.Fsync = FsyncNever // durability is not the subject here
			e := openEngine(t, opts)
			mustCreate(t, e, "t")
			m := newModel()
			m.appendBatch(t, e, "t", genMsgs(0, n, 7))
			m.appendBatch(t, e, "t", genMsgs(1e6, n, 3))
			m.check(t, e, "t", 0)
			e = reopen(t, e, opts)
			m.check(t, e, "t", 0)
			if end := endOf(t, e, "t"); end != uint64(2*n) {
				t.Fatalf("end %d, want %d", end, 2*n)
			}
		})
	}
}

// Promise: empty messages and a 4 MiB message survive the round trip (the
// segment must be at least MaxBatchBytes, so segments are 16 MiB here).
func TestRoundTripMessageSizes(t *testing.T) {
	opts := osOpts(t)
	opts.Fsync = FsyncNever
	opts.SegmentBytes = 16 << 20
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	m.appendBatch(t, e, "t", [][]byte{{}})                      // one empty message
	m.appendBatch(t, e, "t", [][]byte{{}, {}, {}, {}, {}})      // only empty messages
	m.appendBatch(t, e, "t", [][]byte{{}, msgBytes(1, 1), {}})  // empty around a byte
	m.appendBatch(t, e, "t", [][]byte{msgBytes(2, 4<<20)})      // 4 MiB alone
	m.appendBatch(t, e, "t", [][]byte{{}, msgBytes(3, 4<<20)})  // 4 MiB after an empty one
	m.appendBatch(t, e, "t", [][]byte{msgBytes(4, 4<<20), {1}}) // and before a 1-byte one
	m.check(t, e, "t", 0)
	if got := readAll(t, e, "t", 0, 1); len(got[0].data) != 0 {
		t.Fatalf("empty message read back as %d bytes", len(got[0].data))
	}
	e = reopen(t, e, opts)
	m.check(t, e, "t", 0)
}

// Promise: offsets are dense and every message keeps its content across
// segment rolls, a clean restart (Close + Open) and a crash (only synced
// bytes survive); appends after each restart continue at the right offset.
func TestOffsetsDenseAcrossRollsAndRestarts(t *testing.T) {
	rng := newRand(t)
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentBytes = 64 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	key := uint64(0)
	appendSome := func(e *Engine, batches int) {
		for range batches {
			n, size := 1+rng.IntN(40), rng.IntN(300)
			m.appendBatch(t, e, "t", genMsgs(key, n, size))
			key += uint64(n)
		}
	}
	appendSome(e, 150)
	m.check(t, e, "t", 0)

	e = reopen(t, e, opts)
	m.check(t, e, "t", 0)
	appendSome(e, 150)
	m.check(t, e, "t", 0)

	e, fs = crashOpen(t, fs, opts)
	opts.FS = fs
	m.check(t, e, "t", 0)
	appendSome(e, 150)
	m.check(t, e, "t", 0)

	e = reopen(t, e, opts)
	m.check(t, e, "t", 0)
	info := describe(t, e, "t")
	if info.Segments < 4 || info.End != m.next || info.Start != 0 {
		t.Fatalf("%+v: want several segments holding [0, %d)", info, m.next)
	}
	t.Logf("%d messages in %d segments", m.next, info.Segments)
}

// Promise: a Read with a large limit and byte budget returns chunks from
// several segments, in offset order, with no gap between them.
func TestReadSpansSegments(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentBytes = 64 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 100 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 10, 200))
	}
	var res ReadResult
	defer res.Release()
	if err := e.Read("t", 0, m.next, 1<<30, &res); err != nil {
		t.Fatal(err)
	}
	bases := map[uint64]bool{}
	next := uint64(0)
	var total int64
	for _, c := range res.Chunks {
		bases[c.seg.Base()] = true
		if c.Range.First != next {
			t.Fatalf("chunk %+v after offset %d: not contiguous", c.Range, next)
		}
		next = c.Range.Next
		total += int64(len(c.Data()))
	}
	if len(bases) < 3 || len(bases) != len(res.Chunks) {
		t.Fatalf("%d chunks from %d segments, want one chunk per segment and at least 3", len(res.Chunks), len(bases))
	}
	if next != m.next || res.Next() != m.next || total != res.Bytes {
		t.Fatalf("read ends at %d (Next %d), %d bytes (Bytes %d); want end %d", next, res.Next(), total, res.Bytes, m.next)
	}
	if res.Start != 0 || res.End != m.next {
		t.Fatalf("range [%d, %d), want [0, %d)", res.Start, res.End, m.next)
	}
	m.check(t, e, "t", 0)
}

// Promise: a byte budget that ends inside a segment ends the read there:
// every Read returns whole batches within the budget (or one batch), the
// next Read continues where it stopped, and no offset is skipped.
func TestReadByteBudgetAcrossSegments(t *testing.T) {
	opts := memOpts(vfs.NewMemFS())
	opts.SegmentBytes = 64 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 200 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*7, 7, 150+i))
	}
	var res ReadResult
	defer res.Release()
	for _, budget := range []int64{1, 5000, 40 << 10, 64 << 10, 100 << 10, 150 << 10} {
		var got []readMsg
		off, reads := uint64(0), 0
		for ; off < m.next; reads++ {
			if reads > int(m.next) {
				t.Fatalf("budget %d: no progress at %d", budget, off)
			}
			if err := e.Read("t", off, m.next, budget, &res); err != nil {
				t.Fatalf("budget %d: Read(%d): %v", budget, off, err)
			}
			if res.Bytes > budget && len(res.Chunks) != 1 {
				t.Fatalf("budget %d: %d bytes in %d chunks", budget, res.Bytes, len(res.Chunks))
			}
			for _, c := range res.Chunks {
				got = appendChunk(t, got, c, &off, m.next)
			}
		}
		for _, g := range got {
			if !bytes.Equal(g.data, m.msgs[g.off]) {
				t.Fatalf("budget %d: offset %d differs", budget, g.off)
			}
		}
		if uint64(len(got)) != m.next {
			t.Fatalf("budget %d: %d messages", budget, len(got))
		}
		t.Logf("budget %d: %d reads", budget, reads)
	}
}

// Promise: a byte budget smaller than a batch still returns exactly one
// whole batch, and a budget never splits a batch; the limit in messages
// stops after the batch that covers it.
func TestReadBudgets(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	var sizes []int
	for i := range 5 {
		b := batchOf(t, genMsgs(uint64(i)*100, 10, 100)...)
		sizes = append(sizes, len(b))
		mustAppend(t, e, "t", b)
	}
	var res ReadResult
	defer res.Release()
	for _, tc := range []struct {
		name     string
		offset   uint64
		limit    uint64
		maxBytes int64
		first    uint64
		next     uint64
	}{
		{"budget 0", 0, 100, 0, 0, 10},
		{"budget 1 byte", 0, 100, 1, 0, 10},
		{"budget one byte short of two batches", 0, 100, int64(sizes[0]+sizes[1]) - 1, 0, 10},
		{"budget of two batches", 0, 100, int64(sizes[0] + sizes[1]), 0, 20},
		{"offset inside a batch", 15, 1, 1 << 20, 10, 20},
		{"limit ends inside a batch", 0, 11, 1 << 20, 0, 20},
		{"limit 0 reads one message's batch", 20, 0, 1 << 20, 20, 30},
		{"last batch", 49, 1000, 1 << 20, 40, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.Read("t", tc.offset, tc.limit, tc.maxBytes, &res); err != nil {
				t.Fatal(err)
			}
			if len(res.Chunks) != 1 {
				t.Fatalf("%d chunks, want 1", len(res.Chunks))
			}
			r := res.Chunks[0].Range
			if r.First != tc.first || r.Next != tc.next {
				t.Fatalf("range %+v, want offsets [%d, %d)", r, tc.first, tc.next)
			}
			sc := record.NewScanner(res.Chunks[0].Data())
			n := 0
			for sc.Next() {
				n++
			}
			if sc.Err() != nil || uint64(n) != (tc.next-tc.first)/10 {
				t.Fatalf("%d whole batches, err %v", n, sc.Err())
			}
		})
	}
}

// Promise: Read at the end offset returns no chunks and no error, and
// reports the valid range; so does a read of an empty topic at 0.
func TestReadAtEnd(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	var res ReadResult
	defer res.Release()
	if err := e.Read("t", 0, 10, 1<<20, &res); err != nil || len(res.Chunks) != 0 || res.End != 0 {
		t.Fatalf("empty topic: err %v, %d chunks, end %d", err, len(res.Chunks), res.End)
	}
	mustAppend(t, e, "t", batchOf(t, genMsgs(0, 3, 10)...))
	if err := e.Read("t", 3, 10, 1<<20, &res); err != nil || len(res.Chunks) != 0 {
		t.Fatalf("read at end: err %v, %d chunks", err, len(res.Chunks))
	}
	if res.Start != 0 || res.End != 3 || res.Bytes != 0 || res.Next() != 0 {
		t.Fatalf("read at end: %+v", res)
	}
}

// Promise: an offset above the end, or below the start after truncation,
// is a *RangeError matching ErrOutOfRange that carries the valid range.
func TestReadOutOfRange(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentBytes = 64 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 200 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 10, 200))
	}
	var res ReadResult
	defer res.Release()
	wantRange(t, e.Read("t", m.next+1, 1, 1<<20, &res), m.next+1, 0, m.next)
	wantRange(t, e.Read("t", 1<<63, 1, 1<<20, &res), 1<<63, 0, m.next)

	start, err := e.TruncateBefore(t.Context(), "t", m.next/2)
	if err != nil || start == 0 || start > m.next/2 {
		t.Fatalf("TruncateBefore(%d) = %d, %v", m.next/2, start, err)
	}
	wantRange(t, e.Read("t", 0, 1, 1<<20, &res), 0, start, m.next)
	wantRange(t, e.Read("t", start-1, 1, 1<<20, &res), start-1, start, m.next)
	if len(res.Chunks) != 0 {
		t.Fatalf("a failed read holds %d chunks", len(res.Chunks))
	}
	m.check(t, e, "t", start)
}

// Promise: Read never returns bytes it did not verify: a chunk whose
// batches are not the offsets the index promised is ErrCorrupt, not a
// silent skip. Here a clean restart trusts an index whose middle entry
// points at the next batch's position.
func TestReadRejectsIndexPointingAtWrongBatch(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 10 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*100, 3, 10+i))
	}
	log := activeLog(t, e, "t")
	if err := e.Close(); err != nil { // a clean marker: the index is trusted
		t.Fatal(err)
	}
	idx := log[:len(log)-len(".log")] + ".idx"
	err := fs.Corrupt(idx, func(b []byte) []byte {
		copy(b[5*segment.EntrySize+4:5*segment.EntrySize+8], b[6*segment.EntrySize+4:])
		return b
	})
	if err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, opts)
	var res ReadResult
	defer res.Release()
	for off := uint64(15); off < 18; off++ {
		err := e.Read("t", off, 100, 1<<20, &res)
		if err == nil {
			c := res.Chunks[0]
			first := record.NewScanner(c.Data())
			first.Next()
			if first.Header().BaseOffset != c.Range.First {
				t.Fatalf("Read(%d) served batch %d as %+v: offsets %d..%d silently skipped",
					off, first.Header().BaseOffset, c.Range, off, first.Header().BaseOffset-1)
			}
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Read(%d): %v, want ErrCorrupt", off, err)
		}
	}
	// Offsets the damaged entry does not cover still read correctly.
	got := readAll(t, e, "t", 0, 12)
	for _, g := range got {
		if !bytes.Equal(g.data, m.msgs[g.off]) {
			t.Fatalf("offset %d differs", g.off)
		}
	}
}
