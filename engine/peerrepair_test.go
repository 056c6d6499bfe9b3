package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
)

// readAll returns topic's raw batches from offset 0 to its end, or the
// first read error.
func rawAll(e *Engine, topic string) ([]byte, error) {
	var out []byte
	var res ReadResult
	defer res.Release()
	_, end, err := e.Offsets(topic)
	if err != nil {
		return nil, err
	}
	for off := uint64(0); off < end; {
		if err := e.Read(topic, off, end-off, 1<<20, &res); err != nil {
			return nil, err
		}
		for _, c := range res.Chunks {
			out = append(out, c.Data()...)
		}
		off = res.Next()
	}
	return out, nil
}

// fetchFrom hands fn the batches [from, to) of src's topic.
func fetchFrom(src *Engine, topic string) FetchFunc {
	return func(ctx context.Context, from, to uint64, fn func([]byte) error) error {
		var res ReadResult
		defer res.Release()
		for off := from; off < to; {
			if err := src.Read(topic, off, to-off, 1<<20, &res); err != nil {
				return err
			}
			for _, c := range res.Chunks {
				sc := record.NewScanner(c.Data())
				for sc.Next() && off < to {
					if sc.Header().NextOffset() <= off {
						continue
					}
					if err := fn(sc.Batch()); err != nil {
						return err
					}
					off = sc.Header().NextOffset()
				}
			}
		}
		return nil
	}
}

// A sealed segment damaged on the only volume is reported to the damage
// handler by the read that meets it, and RepairSegment rewrites the
// damaged batches from another copy's batches: reads then return the same
// bytes as that copy. Bytes that do not match the seal are refused.
func TestRepairSegmentFromOutside(t *testing.T) {
	opts := osOpts(t)
	opts.Fsync = FsyncNever
	opts.SegmentBytes = 64 << 10
	a := openEngine(t, opts)
	b := openEngine(t, osOpts(t))
	for _, e := range []*Engine{a, b} {
		mustCreate(t, e, "t")
		for i := range 200 {
			p, err := e.EnqueueAt(context.Background(), "t", batchOf(t, genMsgs(uint64(i)<<8, 3, 100)...), int64(1e18)+int64(i))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	want, err := rawAll(b, "t")
	if err != nil {
		t.Fatal(err)
	}
	reported := make(chan uint64, 10)
	a.SetDamageHandler(func(topic string, base uint64) { reported <- base })
	// Flip bytes in the middle of a's first sealed segment.
	tp, _ := a.topic("t")
	s := tp.segments()[0]
	if !s.Sealed() {
		t.Fatal("first segment not sealed")
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
		t.Fatal("damage not reported")
	}
	// Other bytes than the seal's are refused and leave it damaged.
	wrong := func(ctx context.Context, from, to uint64, fn func([]byte) error) error {
		return fetchFrom(b, "t")(ctx, from, to, func(x []byte) error {
			x = bytes.Clone(x)
			x[len(x)-1] ^= 1
			return fn(x)
		})
	}
	if _, err := a.RepairSegment(context.Background(), "t", s.Base(), wrong); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("repair with wrong bytes: %v, want ErrCorrupt", err)
	}
	n, err := a.RepairSegment(context.Background(), "t", s.Base(), fetchFrom(b, "t"))
	if err != nil || n != 1 {
		t.Fatalf("repair: %d copies, %v", n, err)
	}
	got, err := rawAll(a, "t")
	if err != nil {
		t.Fatalf("read after the repair: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("repaired copy reads %d bytes, the other %d: not the same", len(got), len(want))
	}
	if n, err := a.RepairSegment(context.Background(), "t", s.Base(), fetchFrom(b, "t")); err != nil || n != 0 {
		t.Fatalf("repair of a whole segment: %d copies, %v", n, err)
	}
}
