package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
)

func TestSmokeRoundTrip(t *testing.T) {
	fs := segment.NewMemFS()
	opts := Options{Dir: "/data", FS: fs, SegmentBytes: 64 << 10, SegmentEntries: 64}
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		b, _ := record.AppendBatch(nil, []byte(fmt.Sprintf("m%d-a", i)), []byte(fmt.Sprintf("m%d-b", i)))
		off, err := e.Append(ctx, "t", b)
		if err != nil || off != uint64(2*i) {
			t.Fatalf("append %d: off %d err %v", i, off, err)
		}
	}
	check := func(e *Engine) {
		var res ReadResult
		got := 0
		for off := uint64(0); off < 400; {
			if err := e.Read("t", off, 1000, 1<<20, &res); err != nil {
				t.Fatal(err)
			}
			for _, c := range res.Chunks {
				sc := record.NewScanner(c.Data())
				for sc.Next() {
					h := sc.Header()
					it := record.Messages(sc.Batch(), h)
					for m, ok := it.Next(); ok; m, ok = it.Next() {
						want := fmt.Sprintf("m%d-%c", got/2, "ab"[got%2])
						if string(m) != want {
							t.Fatalf("msg %d = %q want %q", got, m, want)
						}
						got++
					}
				}
				if sc.Err() != nil {
					t.Fatal(sc.Err())
				}
			}
			off = res.Next()
			res.Release()
		}
		if got != 400 {
			t.Fatalf("got %d", got)
		}
	}
	check(e)
	info, _ := e.Describe("t")
	t.Logf("%+v", info)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	check(e2)
	e3, err := Open(Options{Dir: "/data", FS: fs.Crash(), SegmentBytes: 64 << 10, SegmentEntries: 64})
	if err != nil {
		t.Fatal(err)
	}
	check(e3)
}
