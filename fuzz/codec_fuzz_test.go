package fuzz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/haraqa/haraqa/record"
)

// forgeBatch wraps payload in a batch with the given flags, count and raw
// length and valid hashes, as a broken or hostile producer could: the
// broker accepts it, so the consumer's decoder is the only defence. It
// returns nil when the header fields cannot pass Verify.
func forgeBatch(flags uint16, count, rawLen uint32, payload []byte) []byte {
	b := make([]byte, record.SizeFor(len(payload)))
	le := binary.LittleEndian
	le.PutUint32(b[0:], record.Magic)
	le.PutUint16(b[4:], record.Version)
	le.PutUint16(b[6:], flags)
	le.PutUint32(b[offPayloadLen:], uint32(len(payload)))
	le.PutUint32(b[12:], count)
	le.PutUint32(b[44:], rawLen)
	le.PutUint64(b[offPayloadHash:], xxhash.Sum64(payload))
	copy(b[record.HeaderSize:], payload)
	record.Stamp(b, 0, 0)
	if _, err := record.Verify(b); err != nil {
		return nil
	}
	return b
}

// FuzzDecompress feeds arbitrary compressed payloads, with any flags, count
// and raw length, to the consumer's decoder behind a valid batch hash.
// Decompress must never panic nor allocate past its bound, must return
// exactly raw_len bytes or ErrCorrupt/ErrTooLarge, and the iterator over
// what it returns must hold to the message encoding's rules.
func FuzzDecompress(f *testing.F) {
	addSeeds(f, decompressSeeds())
	f.Fuzz(func(t *testing.T, payload []byte, flags uint16, count, rawLen uint32) {
		batch := forgeBatch(flags, count, rawLen, payload)
		if batch == nil {
			return
		}
		h, _ := record.Verify(batch)
		raw, err := record.Decompress(nil, batch, &h, fuzzMaxRaw)
		if err != nil {
			if h.Codec() == record.CodecNone {
				t.Fatalf("Decompress of an uncompressed batch: %v", err)
			}
			if !errors.Is(err, record.ErrCorrupt) && !errors.Is(err, record.ErrTooLarge) {
				t.Fatalf("Decompress: %v, want ErrCorrupt or ErrTooLarge", err)
			}
			if errors.Is(err, record.ErrTooLarge) != (h.RawLen > fuzzMaxRaw) {
				t.Fatalf("Decompress: %v with raw_len %d and limit %d", err, h.RawLen, fuzzMaxRaw)
			}
			return
		}
		if len(raw) != int(h.RawLen) || (h.Codec() != record.CodecNone && cap(raw) != len(raw)) {
			t.Fatalf("Decompress returned %d bytes (cap %d), raw_len %d", len(raw), cap(raw), h.RawLen)
		}
		// Decoding again into a reused buffer gives the same bytes.
		again, err := record.Decompress(make([]byte, 0, h.RawLen), batch, &h, fuzzMaxRaw)
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("second decode differs: %v", err)
		}
		checkIter(t, raw, &h)
	})
}

// FuzzExtended walks arbitrary bytes as an extended payload of count
// messages. Nothing may panic, every field must lie inside the payload,
// and a payload that decodes cleanly must survive re-encoding by the
// Builder (with every codec) with the same messages.
func FuzzExtended(f *testing.F) {
	addSeeds(f, extendedSeeds())
	f.Fuzz(func(t *testing.T, payload []byte, count uint32) {
		h := record.Header{Flags: record.FlagExtended, Count: count}
		checkIter(t, payload, &h)
		var it record.Iter
		it.ResetPayload(payload, &h)
		var b record.Builder
		b.Reset()
		type msg struct {
			ts         int64
			key, value []byte
			hdrs       []record.MessageHeader
		}
		var want []msg
		for m, ok := it.NextMessage(); ok; m, ok = it.NextMessage() {
			w := msg{ts: m.Timestamp, key: m.Key, value: m.Value}
			hi := m.Headers()
			for k, v, ok := hi.Next(); ok; k, v, ok = hi.Next() {
				w.hdrs = append(w.hdrs, record.MessageHeader{Key: string(k), Value: v})
			}
			want = append(want, w)
			if err := b.AddMessage(w.ts, w.key, w.value, w.hdrs); err != nil {
				t.Fatalf("AddMessage: %v", err)
			}
		}
		if it.Err() != nil || len(want) == 0 {
			return
		}
		for _, c := range []record.Codec{record.CodecNone, record.CodecS2, record.CodecZstd} {
			batch, err := b.FinishCodec(c)
			if err != nil {
				t.Fatal(err)
			}
			bh, err := record.Verify(batch)
			if err != nil {
				t.Fatalf("%v: re-encoded batch: %v", c, err)
			}
			raw, err := record.Decompress(nil, batch, &bh, 0)
			if err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			var rt record.Iter
			rt.ResetPayload(raw, &bh)
			i := 0
			for m, ok := rt.NextMessage(); ok; m, ok = rt.NextMessage() {
				w := want[i]
				if m.Timestamp != w.ts || !bytes.Equal(m.Key, w.key) || !bytes.Equal(m.Value, w.value) || m.NumHeaders() != len(w.hdrs) {
					t.Fatalf("%v: message %d differs after re-encoding", c, i)
				}
				hi := m.Headers()
				for j := 0; ; j++ {
					k, v, ok := hi.Next()
					if !ok {
						break
					}
					if string(k) != w.hdrs[j].Key || !bytes.Equal(v, w.hdrs[j].Value) {
						t.Fatalf("%v: message %d header %d differs", c, i, j)
					}
				}
				i++
			}
			if rt.Err() != nil || i != len(want) {
				t.Fatalf("%v: re-encoded: %d of %d messages, %v", c, i, len(want), rt.Err())
			}
		}
	})
}
