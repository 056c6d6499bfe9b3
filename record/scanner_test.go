package record_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/haraqa/haraqa/record"
)

// region is a run of back-to-back batches and where each one starts.
type region struct {
	buf    []byte
	starts []int
	counts []int
}

// makeRegion encodes one batch per entry of counts (varied messages),
// stamped with consecutive offsets starting at 100.
func makeRegion(t testing.TB, counts ...int) region {
	t.Helper()
	r := region{counts: counts}
	next := uint64(100)
	for i, n := range counts {
		start := len(r.buf)
		msgs := genMsgs(n, func(j int) int { return varied(i*7 + j) })
		r.buf = appendBatch(t, r.buf, msgs...)
		record.Stamp(r.buf[start:], next, 1700000000000000000+int64(i))
		next += uint64(n)
		r.starts = append(r.starts, start)
	}
	return r
}

// scanAll runs s to its end and returns the start of each batch it verified.
func scanAll(t *testing.T, s *record.Scanner, r region) []int {
	t.Helper()
	var got []int
	for s.Next() {
		i := len(got)
		if i >= len(r.starts) || s.Pos() != r.starts[i] {
			t.Fatalf("batch %d at %d, want starts %v", i, s.Pos(), r.starts)
		}
		if s.End() != s.Pos()+len(s.Batch()) {
			t.Fatalf("batch %d: End %d, Pos %d, %d bytes", i, s.End(), s.Pos(), len(s.Batch()))
		}
		if _, err := record.Verify(s.Batch()); err != nil {
			t.Fatalf("batch %d: Verify(Batch()) = %v", i, err)
		}
		if got := s.Header().Count; got != uint32(r.counts[i]) {
			t.Fatalf("batch %d: Count %d, want %d", i, got, r.counts[i])
		}
		got = append(got, s.Pos())
	}
	return got
}

func TestScannerClean(t *testing.T) {
	r := makeRegion(t, 1, 5, 1000, 2, 37)
	s := record.NewScanner(r.buf)
	got := scanAll(t, &s, r)
	if len(got) != len(r.starts) || s.Err() != nil {
		t.Fatalf("scanned %d of %d batches, Err %v", len(got), len(r.starts), s.Err())
	}
	if s.Pos() != len(r.buf) || s.End() != len(r.buf) {
		t.Fatalf("clean end: Pos %d, End %d, want %d", s.Pos(), s.End(), len(r.buf))
	}
	if s.Next() || s.Err() != nil {
		t.Fatal("Next after the clean end")
	}

	// Offsets continue from batch to batch.
	s.Reset(r.buf, 0)
	want := uint64(100)
	for s.Next() {
		if s.Header().BaseOffset != want {
			t.Fatalf("BaseOffset %d, want %d", s.Header().BaseOffset, want)
		}
		want = s.Header().NextOffset()
	}

	// Reset can start at any batch.
	s.Reset(r.buf, r.starts[2])
	n := 0
	for s.Next() {
		n++
	}
	if n != 3 || s.Err() != nil {
		t.Fatalf("from batch 2: %d batches, Err %v", n, s.Err())
	}

	// An empty region is a clean end.
	s = record.NewScanner(nil)
	if s.Next() || s.Err() != nil || s.Pos() != 0 || s.End() != 0 {
		t.Fatalf("empty region: Err %v, Pos %d, End %d", s.Err(), s.Pos(), s.End())
	}
	if got := record.FindValid(r.buf, 0); got != 0 {
		t.Fatalf("FindValid(valid region, 0) = %d", got)
	}
}

func TestScannerStops(t *testing.T) {
	r := makeRegion(t, 3, 10, 4, 20)
	last := r.starts[len(r.starts)-1]
	mid := r.starts[1]
	tests := []struct {
		name string
		// edit damages a copy of the region.
		edit      func(b []byte) []byte
		want      error
		stopAt    int // Pos and End after the scan stops
		batches   int // batches verified before the stop
		findValid int // FindValid(buf, stopAt+1)
	}{
		{
			name: "truncated inside last header", edit: func(b []byte) []byte { return b[:last+10] },
			want: record.ErrIncomplete, stopAt: last, batches: 3, findValid: -1,
		},
		{
			name: "truncated after last header", edit: func(b []byte) []byte { return b[:last+record.HeaderSize] },
			want: record.ErrIncomplete, stopAt: last, batches: 3, findValid: -1,
		},
		{
			name: "truncated by one byte", edit: func(b []byte) []byte { return b[:len(b)-1] },
			want: record.ErrIncomplete, stopAt: last, batches: 3, findValid: -1,
		},
		{
			name: "bit flip in middle payload", edit: func(b []byte) []byte { b[mid+record.HeaderSize+3] ^= 0x10; return b },
			want: record.ErrCorrupt, stopAt: mid, batches: 1, findValid: r.starts[2],
		},
		{
			name: "bit flip in middle header", edit: func(b []byte) []byte { b[mid+hCount] ^= 1; return b },
			want: record.ErrCorrupt, stopAt: mid, batches: 1, findValid: r.starts[2],
		},
		{
			name: "middle header zeroed", edit: func(b []byte) []byte { clear(b[mid : mid+record.HeaderSize]); return b },
			want: record.ErrIncomplete, stopAt: mid, batches: 1, findValid: r.starts[2],
		},
		{
			name: "zeroed tail", edit: func(b []byte) []byte { return append(b, make([]byte, 4096)...) },
			want: record.ErrIncomplete, stopAt: len(r.buf), batches: 4, findValid: -1,
		},
		{
			name: "zeroed tail shorter than a header", edit: func(b []byte) []byte { return append(b, make([]byte, 8)...) },
			want: record.ErrIncomplete, stopAt: len(r.buf), batches: 4, findValid: -1,
		},
		{
			name: "last batch zeroed", edit: func(b []byte) []byte { clear(b[last:]); return b },
			want: record.ErrIncomplete, stopAt: last, batches: 3, findValid: -1,
		},
		{
			name: "garbage tail", edit: func(b []byte) []byte { return append(b, bytes.Repeat([]byte("HRQB"), 32)...) },
			want: record.ErrCorrupt, stopAt: len(r.buf), batches: 4, findValid: -1,
		},
		{
			name: "first batch damaged", edit: func(b []byte) []byte { b[5] ^= 1; return b },
			want: record.ErrCorrupt, stopAt: 0, batches: 0, findValid: r.starts[1],
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := tt.edit(append([]byte(nil), r.buf...))
			s := record.NewScanner(buf)
			got := scanAll(t, &s, r)
			if len(got) != tt.batches {
				t.Errorf("verified %d batches, want %d", len(got), tt.batches)
			}
			if !errors.Is(s.Err(), tt.want) {
				t.Errorf("Err = %v, want %v", s.Err(), tt.want)
			}
			if s.Pos() != tt.stopAt || s.End() != tt.stopAt {
				t.Errorf("stopped at Pos %d, End %d; want both %d", s.Pos(), s.End(), tt.stopAt)
			}
			if s.Next() {
				t.Error("Next after a failed scan returned true")
			}
			if got := record.FindValid(buf, s.Pos()+1); got != tt.findValid {
				t.Errorf("FindValid(buf, %d) = %d, want %d", s.Pos()+1, got, tt.findValid)
			}
			if tt.findValid >= 0 {
				// Scanning resumes cleanly from the batch FindValid found.
				s.Reset(buf, tt.findValid)
				for s.Next() {
				}
				if s.Err() != nil || s.End() != len(buf) {
					t.Errorf("resumed scan: Err %v, End %d of %d", s.Err(), s.End(), len(buf))
				}
			}
		})
	}
}

func TestFindValid(t *testing.T) {
	r := makeRegion(t, 2, 3)
	tests := []struct {
		name string
		buf  []byte
		from int
		want int
	}{
		{"empty", nil, 0, -1},
		{"zeros", make([]byte, 4096), 0, -1},
		{"from 0", r.buf, 0, 0},
		{"unaligned from rounds up", r.buf, 1, r.starts[1]},
		{"from second batch", r.buf, r.starts[1], r.starts[1]},
		{"from inside second batch", r.buf, r.starts[1] + 1, -1},
		{"from the end", r.buf, len(r.buf), -1},
		{"from past the end", r.buf, len(r.buf) + 100, -1},
		{"only a header left", r.buf[:r.starts[1]+record.HeaderSize], 1, -1},
		{"unaligned batches are skipped", append([]byte{1, 2, 3, 4}, r.buf...), 0, -1},
		{"after aligned garbage", append([]byte("HRQBHRQB"), r.buf...), 0, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := record.FindValid(tt.buf, tt.from); got != tt.want {
				t.Errorf("FindValid(%d bytes, %d) = %d, want %d", len(tt.buf), tt.from, got, tt.want)
			}
		})
	}
}
