package record_test

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/record"
)

// corruptBase returns a valid batch with every header field non-zero and a
// payload that needs padding: 3 messages, 1+5 + 1+0 + 1+10 = 18 payload
// bytes, 6 bytes of padding, 88 bytes in all.
func corruptBase(t testing.TB) []byte {
	t.Helper()
	b := appendBatch(t, nil, []byte("hello"), []byte{}, []byte("0123456789"))
	record.SetProducer(b, 0xabcdef, 9)
	record.Stamp(b, 1000, 1700000000000000000)
	if len(b) != 88 {
		t.Fatalf("base batch is %d bytes, want 88", len(b))
	}
	return b
}

const (
	basePayloadEnd = 64 + 18
	baseLen        = 88
)

// set returns a corrupt func that writes v (of the given byte size) at off,
// optionally recomputing the header hash.
func set(off, size int, v uint64, fixHash bool) func([]byte) []byte {
	return func(b []byte) []byte {
		switch size {
		case 2:
			le.PutUint16(b[off:], uint16(v))
		case 4:
			le.PutUint32(b[off:], uint32(v))
		case 8:
			le.PutUint64(b[off:], v)
		}
		if fixHash {
			rehash(b)
		}
		return b
	}
}

func both(fs ...func([]byte) []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		for _, f := range fs {
			b = f(b)
		}
		return b
	}
}

func TestVerifyCorrupt(t *testing.T) {
	type tc struct {
		name    string
		corrupt func(b []byte) []byte
		want    error
		// viaHash: the damage must be caught by the header hash itself
		// (not by a later structural check that happens to notice).
		viaHash bool
	}
	tests := []tc{
		{name: "valid", corrupt: func(b []byte) []byte { return b }},

		// Payload, padding and framing.
		{name: "payload first bit", corrupt: func(b []byte) []byte { b[64] ^= 1; return b }, want: record.ErrCorrupt},
		{name: "payload last bit", corrupt: func(b []byte) []byte { b[basePayloadEnd-1] ^= 0x80; return b }, want: record.ErrCorrupt},
		{name: "non-zero first padding byte", corrupt: func(b []byte) []byte { b[basePayloadEnd] = 1; return b }, want: record.ErrCorrupt},
		{name: "non-zero last padding byte", corrupt: func(b []byte) []byte { b[baseLen-1] = 0x80; return b }, want: record.ErrCorrupt},
		{name: "trailing byte", corrupt: func(b []byte) []byte { return append(b, 0) }, want: record.ErrCorrupt},
		{name: "trailing zero word", corrupt: func(b []byte) []byte { return append(b, make([]byte, 8)...) }, want: record.ErrCorrupt},
		{name: "trailing batch", corrupt: func(b []byte) []byte { return append(b, b...) }, want: record.ErrCorrupt},

		// Fields rewritten with a correct header hash, reaching the
		// structural checks behind it.
		{name: "count larger than raw length", corrupt: set(hCount, 4, 19, true), want: record.ErrCorrupt},
		{name: "count equal to raw length", corrupt: set(hCount, 4, 18, true)}, // header valid; Iter catches it
		{name: "zero count", corrupt: set(hCount, 4, 0, true), want: record.ErrEmpty},
		{name: "unknown flag 0x20", corrupt: set(hFlags, 2, 0x20, true), want: record.ErrCorrupt},
		{name: "unknown flag 0x8000", corrupt: set(hFlags, 2, 0x8000, true), want: record.ErrCorrupt},
		{name: "extended flag", corrupt: set(hFlags, 2, uint64(record.FlagExtended), true)},
		{name: "unknown codec 3", corrupt: set(hFlags, 2, 3, true), want: record.ErrCodec},
		{name: "unknown codec 15", corrupt: set(hFlags, 2, 15, true), want: record.ErrCodec},
		{name: "version 0", corrupt: set(hVersion, 2, 0, true), want: record.ErrCorrupt},
		{name: "version 2", corrupt: set(hVersion, 2, 2, true), want: record.ErrCorrupt},
		{name: "magic in big-endian", corrupt: set(hMagic, 4, uint64(le.Uint32([]byte("BQRH"))), true), want: record.ErrCorrupt},
		{name: "raw length differs, codec none", corrupt: set(hRawLen, 4, 19, true), want: record.ErrCorrupt},
		{name: "payload length shorter", corrupt: both(set(hPayloadLen, 4, 10, true), set(hRawLen, 4, 10, true)), want: record.ErrCorrupt},
		{name: "payload length longer", corrupt: both(set(hPayloadLen, 4, 30, true), set(hRawLen, 4, 30, true)), want: record.ErrIncomplete},
		{name: "payload hash rewritten", corrupt: set(hPayloadHash, 8, 12345, true), want: record.ErrCorrupt},
		{name: "base offset overflow", corrupt: set(hBaseOffset, 8, math.MaxUint64-2, true), want: record.ErrCorrupt},
		{name: "base offset at the top", corrupt: set(hBaseOffset, 8, math.MaxUint64-3, true)},

		// Huge declared lengths: an error, never a panic or an allocation.
		{name: "huge payload length, stale hash", corrupt: set(hPayloadLen, 4, math.MaxUint32, false), want: record.ErrCorrupt},
		{name: "huge payload length", corrupt: both(set(hPayloadLen, 4, math.MaxUint32, true), set(hRawLen, 4, math.MaxUint32, true)), want: record.ErrTooLarge},
		{name: "huge raw length", corrupt: set(hRawLen, 4, math.MaxUint32, true), want: record.ErrTooLarge},
		{name: "payload length just over the limit", corrupt: both(set(hPayloadLen, 4, record.MaxBatchSize-63, true), set(hRawLen, 4, record.MaxBatchSize-63, true)), want: record.ErrTooLarge},
		{name: "payload length at the limit", corrupt: both(set(hPayloadLen, 4, record.MaxBatchSize-64, true), set(hRawLen, 4, record.MaxBatchSize-64, true)), want: record.ErrIncomplete},
		// A compressed batch may have RawLen != PayloadLen. With a
		// PayloadLen of 2 GiB, int(PayloadLen) is negative on 32-bit
		// platforms: run this test with GOARCH=386 as well.
		{name: "2 GiB compressed payload", corrupt: both(set(hFlags, 2, uint64(record.CodecS2), true), set(hPayloadLen, 4, 1<<31, true)), want: record.ErrTooLarge},
		{name: "4 GiB compressed payload", corrupt: both(set(hFlags, 2, uint64(record.CodecZstd), true), set(hPayloadLen, 4, math.MaxUint32-7, true)), want: record.ErrTooLarge},

		// Zeroed data is not a batch.
		{name: "zeroed header", corrupt: func(b []byte) []byte { clear(b[:64]); return b }, want: record.ErrCorrupt},
		{name: "all zero", corrupt: func(b []byte) []byte { clear(b); return b }, want: record.ErrCorrupt},
	}

	// Truncation anywhere is ErrIncomplete.
	for _, n := range []int{0, 1, 8, 55, 63, 64, 65, 72, basePayloadEnd - 1, basePayloadEnd, baseLen - 1} {
		tests = append(tests, tc{
			name:    fmt.Sprintf("truncated to %d bytes", n),
			corrupt: func(b []byte) []byte { return b[:n] },
			want:    record.ErrIncomplete,
		})
	}

	// A bit flipped in any header field is caught: magic and version by
	// their own checks, every other field (including both hashes) by the
	// header hash.
	fields := []struct {
		name      string
		off, size int
	}{
		{"magic", hMagic, 4}, {"version", hVersion, 2}, {"flags", hFlags, 2},
		{"payload length", hPayloadLen, 4}, {"count", hCount, 4},
		{"base offset", hBaseOffset, 8}, {"append time", hAppendTime, 8},
		{"producer id", hProducerID, 8}, {"sequence", hSequence, 4},
		{"raw length", hRawLen, 4}, {"payload hash", hPayloadHash, 8},
		{"header hash", hHeaderHash, 8},
	}
	for _, f := range fields {
		byHash := f.off != hMagic && f.off != hVersion
		for _, pos := range []struct {
			where   string
			byteOff int
			bit     int
		}{
			{"low bit", f.off, 0},
			{"high bit", f.off + f.size - 1, 7},
		} {
			tests = append(tests, tc{
				name:    fmt.Sprintf("flip %s %s", f.name, pos.where),
				corrupt: func(b []byte) []byte { b[pos.byteOff] ^= 1 << pos.bit; return b },
				want:    record.ErrCorrupt,
				viaHash: byHash,
			})
		}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.corrupt(corruptBase(t))
			var scanErr error
			// The same bytes through Scanner and FindValid: no panic, no
			// allocation of a declared length, and agreement with Verify
			// when the batch fills the buffer exactly.
			allocs := bytesAllocated(func() {
				s := record.NewScanner(b)
				for s.Next() {
				}
				scanErr = s.Err()
				_ = record.FindValid(b, 0)
			})
			if allocs > 1<<20 {
				t.Errorf("Scanner/FindValid allocated %d bytes", allocs)
			}
			if len(b) == baseLen && tt.want != nil && scanErr == nil {
				t.Errorf("Scanner accepted a batch that Verify rejects (%v)", tt.want)
			}

			var (
				h   record.Header
				err error
			)
			allocs = bytesAllocated(func() { h, err = record.Verify(b) })
			wantErr(t, "Verify", err, tt.want)
			if allocs > 1<<20 {
				t.Errorf("Verify allocated %d bytes", allocs)
			}
			if tt.viaHash && !strings.Contains(err.Error(), "header hash") {
				t.Errorf("Verify: %v; want the header hash to catch it", err)
			}
			if err == nil {
				// A batch that verifies iterates without panicking; its
				// messages may still be malformed (ErrCorrupt from Iter).
				it := record.Messages(b, &h)
				n := 0
				for _, ok := it.Next(); ok; _, ok = it.Next() {
					n++
				}
				if it.Err() == nil && n != int(h.Count) {
					t.Errorf("Iter: %d messages, header says %d", n, h.Count)
				}
				if it.Err() != nil && !errors.Is(it.Err(), record.ErrCorrupt) {
					t.Errorf("Iter.Err = %v", it.Err())
				}
			}
		})
	}
}

// TestVerifyEveryBit flips every bit of a batch, one at a time: header,
// payload and padding are all covered, so each flip must be ErrCorrupt.
func TestVerifyEveryBit(t *testing.T) {
	base := corruptBase(t)
	for i := range base {
		for bit := range 8 {
			b := flip(base, i, bit)
			if _, err := record.Verify(b); !errors.Is(err, record.ErrCorrupt) {
				t.Errorf("byte %d bit %d: Verify = %v, want ErrCorrupt", i, bit, err)
			}
			if i < record.HeaderSize {
				if _, err := record.ParseHeader(b); !errors.Is(err, record.ErrCorrupt) {
					t.Errorf("byte %d bit %d: ParseHeader = %v, want ErrCorrupt", i, bit, err)
				}
			}
		}
	}
}

// TestParseHeaderAlone: ParseHeader checks only the 64 header bytes, so a
// reader can validate a header before it reads the payload.
func TestParseHeaderAlone(t *testing.T) {
	b := corruptBase(t)
	h, err := record.ParseHeader(b[:record.HeaderSize])
	if err != nil {
		t.Fatalf("ParseHeader(header only) = %v", err)
	}
	if h.Count != 3 || h.PayloadLen != 18 || h.Size() != baseLen || h.BaseOffset != 1000 ||
		h.AppendTime != 1700000000000000000 || h.ProducerID != 0xabcdef || h.Sequence != 9 {
		t.Errorf("header %+v", h)
	}
	if _, err := record.ParseHeader(b[:record.HeaderSize-1]); !errors.Is(err, record.ErrIncomplete) {
		t.Errorf("ParseHeader(63 bytes) = %v, want ErrIncomplete", err)
	}
}

// bytesAllocated returns the heap bytes f allocated.
func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
