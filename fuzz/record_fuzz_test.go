package fuzz

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/haraqa/haraqa/record"
)

// Byte positions in a batch header, from the record format (FORMAT.md),
// used to repair hashes so that mutated batches get past Verify.
const (
	offPayloadLen  = 8
	offBaseOffset  = 16
	offAppendTime  = 24
	offPayloadHash = 48
)

// FuzzBatch runs record.ParseHeader, Verify, Messages, Scanner and FindValid
// over arbitrary bytes. With fix set, the payload and header hashes are
// recomputed first, so that the fuzzer explores what lies behind the
// checksums. Nothing may panic; a batch Verify accepts must iterate without
// error or stop with ErrCorrupt; the scanner must only hand out batches that
// Verify accepts, back to back.
func FuzzBatch(f *testing.F) {
	addSeeds(f, batchSeeds())
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			data = fixHashes(data)
		}
		_, _ = record.ParseHeader(data)
		if h, err := record.Verify(data); err == nil {
			checkMessages(t, data, &h)
		} else {
			checkErrClass(t, "Verify", err)
		}
		checkScan(t, data)
		if p := record.FindValid(data, 0); p >= 0 {
			h, err := record.ParseHeader(data[p:])
			if err != nil || p+h.Size() > len(data) {
				t.Fatalf("FindValid returned %d: %v", p, err)
			}
			if _, err := record.Verify(data[p : p+h.Size()]); err != nil {
				t.Fatalf("FindValid returned %d, Verify: %v", p, err)
			}
		}
	})
}

// fixHashes returns a copy of data with the payload hash and header hash of
// its first batch made to match, when its declared payload fits.
func fixHashes(data []byte) []byte {
	if len(data) < record.HeaderSize {
		return data
	}
	b := append([]byte(nil), data...)
	le := binary.LittleEndian
	n := int(le.Uint32(b[offPayloadLen:]))
	if n <= len(b)-record.HeaderSize {
		le.PutUint64(b[offPayloadHash:], xxhash.Sum64(b[record.HeaderSize:record.HeaderSize+n]))
	}
	record.Stamp(b, le.Uint64(b[offBaseOffset:]), int64(le.Uint64(b[offAppendTime:])))
	return b
}

func checkErrClass(t *testing.T, what string, err error) {
	t.Helper()
	for _, class := range []error{record.ErrCorrupt, record.ErrIncomplete, record.ErrTooLarge, record.ErrEmpty, record.ErrCodec} {
		if errors.Is(err, class) {
			return
		}
	}
	t.Fatalf("%s: error outside the record classes: %v", what, err)
}

// fuzzMaxRaw bounds what the fuzz targets decompress, as a consumer's
// limit would.
const fuzzMaxRaw = 1 << 20

// checkMessages decompresses (bounded) and iterates a verified batch.
func checkMessages(t *testing.T, batch []byte, h *record.Header) {
	t.Helper()
	raw, err := record.Decompress(nil, batch, h, fuzzMaxRaw)
	if err != nil {
		if h.Codec() == record.CodecNone {
			t.Fatalf("Decompress of an uncompressed batch: %v", err)
		}
		if !errors.Is(err, record.ErrCorrupt) && !errors.Is(err, record.ErrTooLarge) {
			t.Fatalf("Decompress: %v, want ErrCorrupt or ErrTooLarge", err)
		}
		return
	}
	if len(raw) != int(h.RawLen) {
		t.Fatalf("Decompress returned %d bytes, raw_len %d", len(raw), h.RawLen)
	}
	checkIter(t, raw, h)
}

// checkIter walks a raw payload with NextMessage and its headers.
func checkIter(t *testing.T, raw []byte, h *record.Header) {
	t.Helper()
	var it record.Iter
	it.ResetPayload(raw, h)
	var n uint32
	total := 0
	for msg, ok := it.NextMessage(); ok; msg, ok = it.NextMessage() {
		n++
		total += len(msg.Value) + len(msg.Key)
		hi := msg.Headers()
		hn := 0
		for k, v, ok := hi.Next(); ok; k, v, ok = hi.Next() {
			hn++
			total += len(k) + len(v)
		}
		if hn != msg.NumHeaders() {
			t.Fatalf("%d headers walked, NumHeaders %d", hn, msg.NumHeaders())
		}
		if n > h.Count || total > len(raw) {
			t.Fatalf("%d messages, %d bytes from a batch of %d messages, %d raw bytes", n, total, h.Count, len(raw))
		}
	}
	if err := it.Err(); err != nil {
		if !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("Iter: %v, want nil or ErrCorrupt", err)
		}
		return
	}
	if n != h.Count {
		t.Fatalf("Iter ended cleanly after %d of %d messages", n, h.Count)
	}
}

// checkScan walks data with a Scanner.
func checkScan(t *testing.T, data []byte) {
	t.Helper()
	s := record.NewScanner(data)
	end := 0
	for s.Next() {
		if s.Pos() != end {
			t.Fatalf("batch at %d, previous ended at %d", s.Pos(), end)
		}
		b := s.Batch()
		h, err := record.Verify(b)
		if err != nil {
			t.Fatalf("Scanner handed out a batch Verify refuses: %v", err)
		}
		if h != *s.Header() || s.End() != end+len(b) || len(b) == 0 {
			t.Fatalf("Scanner header %+v, Verify %+v", *s.Header(), h)
		}
		end = s.End()
		checkMessages(t, b, &h)
	}
	if err := s.Err(); err != nil {
		checkErrClass(t, "Scanner", err)
	} else if s.End() != len(data) {
		t.Fatalf("clean end at %d of %d bytes", s.End(), len(data))
	}
}

// TestBatchSeedsPassVerify keeps the seeds that are meant to reach the
// message iterator doing so: a format change that breaks them would leave
// FuzzBatch stuck in front of the checksums.
func TestBatchSeedsPassVerify(t *testing.T) {
	valid := map[string]bool{"one": true, "s2_flag": true, "payload_flipped_fixed": true, "zstd_extended": true, "s2_plain": true}
	for _, s := range batchSeeds() {
		data := s.args[0].([]byte)
		if s.args[1].(bool) {
			data = fixHashes(data)
		}
		if _, err := record.Verify(data); (err == nil) != valid[s.name] {
			t.Errorf("seed %s: Verify: %v", s.name, err)
		}
	}
}
