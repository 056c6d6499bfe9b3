package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/haraqa/haraqa/segment"
)

// damageIndex points the middle entry of sealed segment s's index at the
// batch after it: the cheap check at open (size, first and last entries)
// still passes, reads of that batch do not.
func damageIndex(t *testing.T, s *segment.Segment) {
	t.Helper()
	path := filepath.Join(s.Dir(), segment.IndexName(s.Base()))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := len(b) / segment.EntrySize
	if n < 4 {
		t.Fatalf("segment %d has %d index entries", s.Base(), n)
	}
	i := n / 2
	copy(b[i*segment.EntrySize+4:i*segment.EntrySize+8], b[(i+1)*segment.EntrySize+4:(i+1)*segment.EntrySize+8])
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
}

// rawEach is rawAll read one batch at a time, so that every batch is
// located through its own index entry.
func rawEach(e *Engine, topic string) ([]byte, error) {
	var out []byte
	var res ReadResult
	defer res.Release()
	_, end, err := e.Offsets(topic)
	if err != nil {
		return nil, err
	}
	for off := uint64(0); off < end; {
		if err := e.Read(topic, off, 1, 1<<20, &res); err != nil {
			return nil, err
		}
		for _, c := range res.Chunks {
			out = append(out, c.Data()...)
		}
		off = res.Next()
	}
	return out, nil
}

// Promise: a damaged index of a sealed segment whose log is intact (it
// matches its seal) is rebuilt from the log on this node, with nothing
// fetched from elsewhere: by the scrubber's repair on a single volume, and
// by RepairSegment (a cluster's repair from a peer) without calling its
// fetch. Reads then return the bytes they returned before the damage, also
// after a restart.
func TestDamagedIndexRebuiltFromLog(t *testing.T) {
	opts := osOpts(t)
	opts.Fsync = FsyncNever
	opts.SegmentBytes = 64 << 10
	opts.ScrubInterval = 1 << 62
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	for i := range 400 {
		mustAppend(t, e, "t", batchOf(t, genMsgs(uint64(i)<<8, 3, 100)...))
	}
	want, err := rawEach(e, "t")
	if err != nil {
		t.Fatal(err)
	}
	// Sealed segments read their index file once reopened (a segment
	// sealed in this run may still hold its index in memory).
	e = reopen(t, e, opts)
	tp, _ := e.topic("t")
	segs := tp.segments()
	if len(segs) < 3 || !segs[1].Sealed() {
		t.Fatalf("%d segments, want 3 or more, the first two sealed", len(segs))
	}

	// The scrubber's repair, no mirror to copy from.
	damageIndex(t, segs[0])
	if _, err := rawEach(e, "t"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read through the damaged index: %v, want ErrCorrupt", err)
	}
	if bad := e.Scrub(0); bad != 1 {
		t.Fatalf("scrub found %d bad segments, want 1", bad)
	}
	if got, err := rawEach(e, "t"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after the scrub: %d bytes (want %d), %v", len(got), len(want), err)
	}

	// A peer's repair: the index is rebuilt, nothing is fetched.
	damageIndex(t, segs[1])
	if _, err := rawEach(e, "t"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read through the damaged index: %v, want ErrCorrupt", err)
	}
	fetched := false
	fetch := func(ctx context.Context, from, to uint64, fn func([]byte) error) error {
		fetched = true
		return errors.New("nothing to fetch from")
	}
	if n, err := e.RepairSegment(context.Background(), "t", segs[1].Base(), fetch); err != nil || n != 1 || fetched {
		t.Fatalf("repair: %d copies, %v, fetched %v; want 1, nil, false", n, err, fetched)
	}
	if got, err := rawEach(e, "t"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after the repair: %d bytes (want %d), %v", len(got), len(want), err)
	}
	e = reopen(t, e, opts)
	if got, err := rawEach(e, "t"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after a restart: %d bytes (want %d), %v", len(got), len(want), err)
	}
}

// Promise: damage in the committed part of the active segment (only one
// volume) is reported to the damage handler by the read that meets it, and
// RepairSegment rewrites the damaged batches from another copy's: reads
// then return that copy's bytes, appends go on, and the segment seals and
// reopens whole.
func TestRepairActiveSegmentFromOutside(t *testing.T) {
	opts := osOpts(t)
	opts.Fsync = FsyncNever
	opts.SegmentBytes = 1 << 20
	a := openEngine(t, opts)
	b := openEngine(t, osOpts(t))
	appendBoth := func(from, to int) {
		for _, e := range []*Engine{a, b} {
			for i := from; i < to; i++ {
				p, err := e.EnqueueAt(context.Background(), "t", batchOf(t, genMsgs(uint64(i)<<8, 3, 100)...), int64(1e18)+int64(i))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.Wait(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, e := range []*Engine{a, b} {
		mustCreate(t, e, "t")
	}
	appendBoth(0, 100)
	reported := make(chan uint64, 10)
	a.SetDamageHandler(func(topic string, base uint64) { reported <- base })
	tp, _ := a.topic("t")
	s := tp.segments()[0]
	if s.Sealed() {
		t.Fatal("the only segment is sealed")
	}
	path := filepath.Join(s.Dir(), segment.LogName(s.Base()))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	f.ReadAt(buf, s.Size()/2)
	for i := range buf {
		buf[i] ^= 0x5a
	}
	f.WriteAt(buf, s.Size()/2)
	f.Close()
	if _, err := rawAll(a, "t"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of the damaged copy: %v, want ErrCorrupt", err)
	}
	select {
	case base := <-reported:
		if base != s.Base() {
			t.Fatalf("damage reported for segment %d, want %d", base, s.Base())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("damage of the active segment not reported")
	}
	n, err := a.RepairSegment(context.Background(), "t", s.Base(), fetchFrom(b, "t"))
	if err != nil || n != 1 {
		t.Fatalf("repair: %d copies, %v", n, err)
	}
	appendBoth(100, 150)
	want, err := rawAll(b, "t")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rawAll(a, "t"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after the repair: %d bytes (the other copy %d), %v", len(got), len(want), err)
	}
	a = reopen(t, a, opts)
	if got, err := rawAll(a, "t"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after a restart: %d bytes (the other copy %d), %v", len(got), len(want), err)
	}
}
