package record_test

import (
	"errors"
	"testing"

	"github.com/haraqa/haraqa/record"
)

// FuzzDecode feeds arbitrary bytes to every decoder. They must never panic,
// must agree with each other, and must only return the package's errors.
func FuzzDecode(f *testing.F) {
	one, _ := record.AppendBatch(nil, []byte("hello"), nil, []byte("world"))
	two, _ := record.AppendBatch(append([]byte(nil), one...), make([]byte, 300))
	f.Add(one)
	f.Add(two)
	f.Add(one[:70])
	f.Add(make([]byte, 64))
	f.Add([]byte("HRQB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := record.Verify(b)
		if err != nil {
			if !errors.Is(err, record.ErrCorrupt) && !errors.Is(err, record.ErrIncomplete) &&
				!errors.Is(err, record.ErrTooLarge) && !errors.Is(err, record.ErrEmpty) &&
				!errors.Is(err, record.ErrCodec) {
				t.Fatalf("Verify: unclassified error %v", err)
			}
		} else {
			if h.Size() != len(b) {
				t.Fatalf("Verify accepted %d bytes for a %d-byte batch", len(b), h.Size())
			}
			if h.Codec() == record.CodecNone {
				it := record.Messages(b, &h)
				for _, ok := it.Next(); ok; _, ok = it.Next() {
				}
				if it.Err() != nil && !errors.Is(it.Err(), record.ErrCorrupt) {
					t.Fatalf("Iter: %v", it.Err())
				}
			}
		}

		s := record.NewScanner(b)
		n := 0
		for s.Next() {
			if _, err := record.Verify(s.Batch()); err != nil {
				t.Fatalf("Scanner returned a batch Verify rejects: %v", err)
			}
			n++
		}
		if err == nil && (n != 1 || s.Err() != nil) {
			t.Fatalf("Verify accepted the buffer, Scanner saw %d batches and %v", n, s.Err())
		}
		if s.End() > len(b) || s.Pos() > len(b) {
			t.Fatalf("Scanner ran past the buffer: Pos %d, End %d, len %d", s.Pos(), s.End(), len(b))
		}

		p := record.FindValid(b, 0)
		if p >= 0 {
			if p%record.Align != 0 {
				t.Fatalf("FindValid returned unaligned %d", p)
			}
			hp, err := record.ParseHeader(b[p:])
			if err != nil || p+hp.Size() > len(b) {
				t.Fatalf("FindValid returned %d, which does not hold a batch: %v", p, err)
			}
			if _, err := record.Verify(b[p : p+hp.Size()]); err != nil {
				t.Fatalf("FindValid returned %d: %v", p, err)
			}
		}
		if n > 0 && p != 0 {
			t.Fatalf("Scanner verified a batch at 0, FindValid says %d", p)
		}
	})
}
