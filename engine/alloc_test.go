package engine

import (
	"context"
	"testing"
)

// Promise (STYLE #5): the hot paths allocate nothing once warm. Append of
// a pre-built batch of 1,000 messages (real files, fsync never and
// always); Read of several segments into a warm ReadResult, then Release.
func TestAppendAllocs(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncNever, FsyncAlways} {
		t.Run(policy.String(), func(t *testing.T) {
			opts := osOpts(t)
			opts.Fsync = policy
			opts.SegmentBytes = 64 << 20 // no roll while measuring
			e := openEngine(t, opts)
			mustCreate(t, e, "t")
			batch := batchOf(t, genMsgs(0, 1000, 100)...)
			ctx := context.Background()
			for range 3 { // warm-up
				mustAppend(t, e, "t", batch)
			}
			runs := 100
			if policy == FsyncAlways {
				runs = 20 // each costs an fdatasync
			}
			n := testing.AllocsPerRun(runs, func() {
				if _, err := e.Append(ctx, "t", batch); err != nil {
					t.Fatal(err)
				}
			})
			if n != 0 && !raceEnabled {
				t.Fatalf("Append allocates %v times per call, want 0", n)
			}
			t.Logf("%v allocations per Append", n)
		})
	}
}

func TestReadAllocs(t *testing.T) {
	opts := osOpts(t)
	opts.Fsync = FsyncNever
	opts.SegmentBytes = 64 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := fillSegments(t, e, "t", 4)
	var res ReadResult
	read := func() {
		if err := e.Read("t", 0, m.next, 1<<30, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Chunks) < 4 {
			t.Fatalf("%d chunks", len(res.Chunks))
		}
		res.Release()
	}
	read() // warm-up: Chunks grows to its working size
	if n := testing.AllocsPerRun(100, read); n != 0 {
		t.Fatalf("Read+Release allocates %v times, want 0", n)
	}
	// A read at the end and a small read, too.
	if n := testing.AllocsPerRun(100, func() {
		if err := e.Read("t", m.next, 1, 1<<20, &res); err != nil {
			t.Fatal(err)
		}
		if err := e.Read("t", 5, 1, 1, &res); err != nil {
			t.Fatal(err)
		}
		res.Release()
	}); n != 0 {
		t.Fatalf("small reads allocate %v times, want 0", n)
	}
}
