package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// fillSegments appends 10-message batches to topic until it has at least
// n segments and returns the model.
func fillSegments(t *testing.T, e *Engine, topic string, n int) *model {
	t.Helper()
	m := newModel()
	for i := 0; describe(t, e, topic).Segments < n; i++ {
		if i > 100_000 {
			t.Fatal("segments do not roll")
		}
		m.appendBatch(t, e, topic, genMsgs(uint64(i)*10, 10, 150))
	}
	return m
}

// Promise: retention deletes a segment that a reader
// holds; the held Chunk.Data() stays readable and unchanged until Release
// (on real files: unlinked, still mapped), a new Read below the new start
// is a *RangeError carrying it, and the files are gone.
func TestRetentionWhileReaderHoldsChunk(t *testing.T) {
	for _, fsName := range []string{"os", "mem"} {
		t.Run(fsName, func(t *testing.T) {
			opts := memOpts(vfs.NewMemFS())
			if fsName == "os" {
				opts = osOpts(t)
				opts.Fsync = FsyncNever
			}
			opts.SegmentBytes = 16 << 10
			opts.RetentionBytes = 1 // keep only the active segment
			e := openEngine(t, opts)
			mustCreate(t, e, "t")
			m := fillSegments(t, e, "t", 4)
			var held ReadResult
			if err := e.Read("t", 0, m.next, 1<<30, &held); err != nil {
				t.Fatal(err)
			}
			if len(held.Chunks) < 3 {
				t.Fatalf("%d chunks", len(held.Chunks))
			}
			copies := make([][]byte, len(held.Chunks))
			for i, c := range held.Chunks {
				copies[i] = bytes.Clone(c.Data())
			}
			tp, _ := e.topic("t")
			old := tp.segments()
			e.ApplyRetention()
			info := describe(t, e, "t")
			if info.Segments != 1 || info.Start != old[len(old)-1].Base() {
				t.Fatalf("after retention %+v, want only the active segment", info)
			}
			for i, c := range held.Chunks {
				if !bytes.Equal(c.Data(), copies[i]) {
					t.Fatalf("held chunk %d changed after its segment was deleted", i)
				}
				sc := record.NewScanner(c.Data())
				for sc.Next() {
				}
				if sc.Err() != nil {
					t.Fatalf("held chunk %d: %v", i, sc.Err())
				}
			}
			var res ReadResult
			wantRange(t, e.Read("t", 0, 1, 1<<20, &res), 0, info.Start, m.next)
			for _, s := range old[:len(old)-1] {
				if _, err := e.fs.ReadFile(filepath.Join(s.Dir(), segment.LogName(s.Base()))); err == nil {
					t.Fatalf("segment %d's log still exists", s.Base())
				}
			}
			held.Release()
			m.check(t, e, "t", info.Start)
		})
	}
}

// Promise: a reader that pinned a sealed segment before
// retention removed it, but had not mapped it yet (segments of a restarted
// engine are mapped on first read), is told to look again, and then gets
// a *RangeError, never an open error.
func TestReadOfSegmentRemovedBeforeFirstMap(t *testing.T) {
	opts := memOpts(vfs.NewMemFS())
	opts.SegmentBytes = 16 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := fillSegments(t, e, "t", 3)
	e = reopen(t, e, opts) // sealed segments are now mapped lazily
	tp, _ := e.topic("t")
	stale := tp.segments() // what a reader loaded just before retention ran
	if !stale[0].Acquire() {
		t.Fatal("Acquire")
	}
	defer stale[0].Release()
	if _, err := e.TruncateBefore(t.Context(), "t", stale[1].Base()); err != nil {
		t.Fatal(err)
	}
	var res ReadResult
	defer res.Release()
	res.End = m.next // as Read sets it before readSegments
	if err := e.readSegments(tp, stale, 0, 10, 1<<20, &res); err != errRetry {
		t.Fatalf("read of a removed, never mapped segment = %v, want a retry", err)
	}
	wantRange(t, e.Read("t", 0, 10, 1<<20, &res), 0, stale[1].Base(), m.next)
	if _, err := e.OffsetAt("t", time.Unix(0, 0)); err != nil {
		t.Fatalf("OffsetAt after retention: %v", err)
	}
	m.check(t, e, "t", stale[1].Base())
}

// Promise: retention never deletes the active segment, however small the
// byte limit or however old its data.
func TestRetentionKeepsActiveSegment(t *testing.T) {
	clock := newFakeClock(time.Unix(1_700_000_000, 0))
	opts := memOpts(vfs.NewMemFS())
	opts.RetentionBytes, opts.RetentionAge, opts.Now = 1, time.Minute, clock.Now
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	m.appendBatch(t, e, "t", genMsgs(0, 10, 100))
	clock.Advance(time.Hour)
	e.ApplyRetention()
	if info := describe(t, e, "t"); info.Start != 0 || info.End != m.next {
		t.Fatalf("%+v: the active segment was touched", info)
	}
	m.check(t, e, "t", 0)
}

// Promise: retention by age (with a fake clock) deletes exactly the sealed
// segments whose newest batch is older than RetentionAge, oldest first.
func TestRetentionByAge(t *testing.T) {
	clock := newFakeClock(time.Unix(1_700_000_000, 0))
	opts := memOpts(vfs.NewMemFS())
	opts.SegmentBytes = 16 << 10
	opts.RetentionAge = 90 * time.Minute
	opts.Now = clock.Now
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	tp, _ := e.topic("t")
	m := newModel()
	// One segment per hour: segment h holds batches appended at hour h.
	for h := range 5 {
		for describe(t, e, "t").Segments == h+1 {
			m.appendBatch(t, e, "t", genMsgs(m.next, 10, 150))
		}
		clock.Advance(time.Hour)
	}
	segs := tp.segments()
	for _, s := range segs {
		t.Logf("segment %d: last batch at %v", s.Base(), time.Unix(0, s.LastTime()).UTC())
	}
	// Now is 5h after the start: segments whose last batch is older than
	// 3.5h are deleted. Their last batches were appended at 0h, 1h, ...
	e.ApplyRetention()
	info := describe(t, e, "t")
	var want uint64
	for _, s := range segs[:len(segs)-1] {
		if clock.Now().Sub(time.Unix(0, s.LastTime())) > opts.RetentionAge {
			want = s.Next()
		}
	}
	if want == 0 || info.Start != want {
		t.Fatalf("start %d after retention, want %d", info.Start, want)
	}
	m.check(t, e, "t", info.Start)
	e.ApplyRetention() // idempotent
	if again := describe(t, e, "t"); again.Start != info.Start {
		t.Fatalf("second retention moved start to %d", again.Start)
	}
}

// Promise: OffsetAt (fake clock) finds the first batch appended at or after
// a time, across segments; times before everything give the start, after
// everything the end; after truncation it never returns a deleted offset.
func TestOffsetAt(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	clock := newFakeClock(t0)
	opts := memOpts(vfs.NewMemFS())
	opts.SegmentBytes = 8 << 10
	opts.Now = clock.Now
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	var bases []uint64 // bases[i]: offset of the batch appended at t0 + i minutes
	for i := range 60 {
		bases = append(bases, m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 10, 100)))
		clock.Advance(time.Minute)
	}
	if n := describe(t, e, "t").Segments; n < 4 {
		t.Fatalf("%d segments, want several", n)
	}
	check := func(e *Engine, start uint64) {
		t.Helper()
		at := func(tm time.Time, want uint64) {
			t.Helper()
			if got, err := e.OffsetAt("t", tm); err != nil || got != want {
				t.Fatalf("OffsetAt(t0%+v) = %d, %v; want %d", tm.Sub(t0), got, err, want)
			}
		}
		at(t0.Add(-time.Hour), start)
		for i, b := range bases {
			if b < start {
				continue
			}
			at(t0.Add(time.Duration(i)*time.Minute), b)                 // exactly its time
			at(t0.Add(time.Duration(i)*time.Minute-time.Second), b)     // just before it
			at(t0.Add(time.Duration(i)*time.Minute-time.Nanosecond), b) // a nanosecond before
		}
		at(t0.Add(59*time.Minute+time.Nanosecond), m.next)
		at(t0.Add(time.Hour*24), m.next)
	}
	check(e, 0)
	e = reopen(t, e, opts)
	check(e, 0)
	start, err := e.TruncateBefore(t.Context(), "t", bases[30])
	if err != nil {
		t.Fatal(err)
	}
	check(e, start)
}

// Promise: TruncateBefore moves the start in whole segments only (to the
// base of the segment holding the offset), never past the end; at the end
// offset it rolls the active segment so that everything goes, and appends
// continue at the end; above the end it is a *RangeError.
func TestTruncateBefore(t *testing.T) {
	opts := memOpts(vfs.NewMemFS())
	opts.SegmentBytes = 8 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := fillSegments(t, e, "t", 5)
	tp, _ := e.topic("t")
	segs := tp.segments()
	mid := segs[2].Base() + (segs[2].Next()-segs[2].Base())/2
	start, err := e.TruncateBefore(t.Context(), "t", mid)
	if err != nil || start != segs[2].Base() {
		t.Fatalf("TruncateBefore(%d) = %d, %v; want the segment base %d", mid, start, err, segs[2].Base())
	}
	m.check(t, e, "t", start)
	if again, err := e.TruncateBefore(t.Context(), "t", 0); err != nil || again != start {
		t.Fatalf("TruncateBefore below the start = %d, %v; want %d", again, err, start)
	}
	_, err = e.TruncateBefore(t.Context(), "t", m.next+1)
	wantRange(t, err, m.next+1, start, m.next)

	start, err = e.TruncateBefore(t.Context(), "t", m.next)
	if err != nil || start != m.next {
		t.Fatalf("TruncateBefore(end %d) = %d, %v", m.next, start, err)
	}
	if info := describe(t, e, "t"); info.Start != m.next || info.End != m.next || info.Segments != 1 {
		t.Fatalf("%+v: want an empty topic at %d", info, m.next)
	}
	var res ReadResult
	wantRange(t, e.Read("t", 0, 1, 1<<20, &res), 0, m.next, m.next)
	from := m.next
	m.appendBatch(t, e, "t", genMsgs(1e6, 3, 3))
	m.check(t, e, "t", from)
	e = reopen(t, e, opts)
	m.check(t, e, "t", from)
	if s, _, _ := e.Offsets("t"); s != from {
		t.Fatalf("start %d after restart, want %d", s, from)
	}
}

// Promise: a segment deleted by retention on real files is unlinked at
// once (its disk space can be reclaimed) even while a reader maps it.
func TestRetentionUnlinksHeldSegmentOSFS(t *testing.T) {
	opts := osOpts(t)
	opts.Fsync = FsyncNever
	opts.SegmentBytes = 16 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	fillSegments(t, e, "t", 3)
	var held ReadResult
	defer held.Release()
	if err := e.Read("t", 0, 1, 1<<20, &held); err != nil {
		t.Fatal(err)
	}
	if _, err := e.TruncateBefore(t.Context(), "t", held.Chunks[0].seg.Next()); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(opts.Dir, topicsDir, "t", segment.LogName(0))
	if _, err := os.Stat(log); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of the deleted segment: %v", err)
	}
	if f := held.Chunks[0].File(); f == nil {
		t.Fatal("held chunk lost its file")
	}
}

// Promise: a closed engine touches no files: ApplyRetention after Close
// deletes nothing, and the next open finds every segment.
func TestApplyRetentionAfterClose(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentBytes = 8 << 10
	opts.RetentionBytes = 1
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := fillSegments(t, e, "t", 3)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e.ApplyRetention()
	e = openEngine(t, opts)
	if info := describe(t, e, "t"); info.Start != 0 || info.Segments != 3 {
		t.Fatalf("%+v: retention ran on a closed engine", info)
	}
	m.check(t, e, "t", 0)
}
