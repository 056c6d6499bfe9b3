package record_test

import (
	"testing"

	"github.com/haraqa/haraqa/record"
)

func TestAllocs(t *testing.T) {
	msgs := genMsgs(1000, func(int) int { return 100 })
	batch := appendBatch(t, nil, msgs...)
	region := makeRegion(t, 1, 10, 100, 1, 3, 1000, 7, 50, 2, 9, 500, 1).buf
	for range 4 {
		region = append(region, region...) // 192 batches
	}

	var b record.Builder
	buildOnce := func() {
		b.Reset()
		for _, m := range msgs {
			if err := b.Add(m); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	buildOnce() // warm-up: the buffer grows to its working size

	tests := []struct {
		name string
		f    func()
	}{
		{"Builder Reset+Add×1000+Finish", buildOnce},
		{"Verify", func() {
			if _, err := record.Verify(batch); err != nil {
				t.Fatal(err)
			}
		}},
		{"Iter over 1000 messages", func() {
			h, _ := record.Verify(batch)
			it := record.Messages(batch, &h)
			n := 0
			for _, ok := it.Next(); ok; _, ok = it.Next() {
				n++
			}
			if n != 1000 || it.Err() != nil {
				t.Fatalf("%d messages, %v", n, it.Err())
			}
		}},
		{"Scanner over 192 batches", func() {
			s := record.NewScanner(region)
			n := 0
			for s.Next() {
				n++
			}
			if n != 192 || s.Err() != nil {
				t.Fatalf("%d batches, %v", n, s.Err())
			}
		}},
		{"Scanner.Reset", func() {
			var s record.Scanner
			s.Reset(region, 0)
			for s.Next() {
			}
		}},
		{"FindValid", func() {
			if record.FindValid(region, 1) < 0 {
				t.Fatal("nothing found")
			}
		}},
		{"AppendBatch into a large enough dst", func() {
			dst := batch[:0]
			if _, err := record.AppendBatch(dst, msgs...); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.f); n != 0 {
				t.Errorf("%v allocations per run, want 0", n)
			}
		})
	}
}
