package engine

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/haraqa/haraqa/record"
)

// zeroFrame returns a zstd frame (RFC 8878) that decodes to n zero bytes,
// made of RLE blocks: n empty messages in a few bytes per 128 KiB.
func zeroFrame(n int) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0xFD2FB528)
	b = append(b, 3<<6|1<<5) // 8-byte content size, single segment
	b = le.AppendUint64(b, uint64(n))
	for n > 0 {
		size := min(n, 128<<10)
		n -= size
		hdr := uint32(size)<<3 | 1<<1 // RLE block
		if n == 0 {
			hdr |= 1 // last block
		}
		b = append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16), 0)
	}
	return b
}

// zeroBatch returns an unstamped zstd batch of n empty messages (n raw
// bytes, a few KiB on the wire).
func zeroBatch(n int) []byte {
	payload := zeroFrame(n)
	le := binary.LittleEndian
	b := make([]byte, record.SizeFor(len(payload)))
	copy(b[0:], "HRQB")
	le.PutUint16(b[4:], record.Version)
	le.PutUint16(b[6:], uint16(record.CodecZstd))
	le.PutUint32(b[8:], uint32(len(payload)))
	le.PutUint32(b[12:], uint32(n))
	le.PutUint32(b[44:], uint32(n))
	le.PutUint64(b[48:], xxhash.Sum64(payload))
	le.PutUint64(b[56:], xxhash.Sum64(b[:56]))
	copy(b[record.HeaderSize:], payload)
	return b
}

// Promise: offsets above 2^32 in a segment stay readable. A compressed
// batch may hold up to a gigabyte of tiny messages in a few KiB, so a few
// produces can span more offsets than a segment's 32-bit relative offsets
// hold: the segment rolls before that, and every batch reads back at its
// offsets, before and after a restart.
func TestBigCountBatchesDoNotWrapTheIndex(t *testing.T) {
	// The helper's frame is real zstd: a small one decodes to its messages.
	small := zeroBatch(300 << 10)
	h, err := record.Verify(small)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := record.Decompress(nil, small, &h, 0)
	if err != nil {
		t.Fatal(err)
	}
	var it record.Iter
	it.ResetPayload(raw, &h)
	n := 0
	for m, ok := it.Next(); ok; m, ok = it.Next() {
		if len(m) != 0 {
			t.Fatalf("message %d has %d bytes", n, len(m))
		}
		n++
	}
	if it.Err() != nil || n != 300<<10 {
		t.Fatalf("decoded %d messages (%v), want %d", n, it.Err(), 300<<10)
	}

	opts := osOpts(t)
	opts.MaxBatchBytes = record.MaxBatchSize
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	big := zeroBatch(record.MaxBatchSize) // 2^30 messages
	type batch struct{ base, count uint64 }
	var want []batch
	want = append(want, batch{mustAppend(t, e, "t", batchOf(t, msgBytes(1, 10))), 1})
	for range 4 {
		b := append([]byte(nil), big...)
		want = append(want, batch{mustAppend(t, e, "t", b), 1 << 30})
	}
	check := func(e *Engine) {
		t.Helper()
		next := uint64(0)
		for _, b := range want {
			if b.base != next {
				t.Fatalf("batch at offset %d, want %d", b.base, next)
			}
			next += b.count
			for _, off := range []uint64{b.base, b.base + b.count/2, b.base + b.count - 1} {
				var res ReadResult
				if err := e.Read("t", off, 1, 1<<20, &res); err != nil {
					t.Fatalf("Read(%d): %v", off, err)
				}
				if len(res.Chunks) == 0 {
					t.Fatalf("Read(%d): no chunks", off)
				}
				h, err := record.ParseHeader(res.Chunks[0].Data())
				if err != nil || h.BaseOffset != b.base || uint64(h.Count) != b.count {
					t.Fatalf("Read(%d): batch %+v, %v; want base %d, %d messages", off, h, err, b.base, b.count)
				}
				res.Release()
			}
		}
		if end := endOf(t, e, "t"); end != next {
			t.Fatalf("end %d, want %d", end, next)
		}
	}
	check(e)
	if n := describe(t, e, "t").Segments; n != 2 {
		t.Fatalf("%d segments, want 2 (a roll before the span passes 2^32)", n)
	}
	e = reopen(t, e, opts)
	check(e)
}

// Promise: a batch whose uncompressed size passes the batch limit is
// refused with a clear error at append (a consumer could not decode it),
// however small it is on the wire, and nothing of it is stored.
func TestRawLengthBoundedAtAppend(t *testing.T) {
	opts := osOpts(t)
	opts.MaxBatchBytes = 1 << 20
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	_, err := e.Append(t.Context(), "t", zeroBatch(1<<20+1))
	if !errors.Is(err, ErrInvalidBatch) || !errors.Is(err, record.ErrTooLarge) {
		t.Fatalf("Append of a batch of %d raw bytes with a %d-byte limit = %v, want ErrInvalidBatch", 1<<20+1, 1<<20, err)
	}
	if end := endOf(t, e, "t"); end != 0 {
		t.Fatalf("end %d after a refused batch", end)
	}
	if off := mustAppend(t, e, "t", zeroBatch(1<<20)); off != 0 {
		t.Fatalf("a batch at the limit got offset %d", off)
	}
}
