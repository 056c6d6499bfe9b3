package record_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/haraqa/haraqa/record"
)

func TestExtendedRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msgs []extMsg
	}{
		{"bare", []extMsg{{value: []byte("v")}}},
		{"empty value", []extMsg{{ts: 1, key: []byte("k")}}},
		{"everything", []extMsg{{ts: 1700000000123456789, key: []byte("user-1"), value: []byte("login"),
			hdrs: []record.MessageHeader{{Key: "trace", Value: []byte("abc")}, {Key: "", Value: nil}, {Key: "trace", Value: []byte("dup")}}}}},
		{"timestamps out of order", []extMsg{{ts: 100, value: []byte("a")}, {ts: 50, value: []byte("b")}, {ts: 0, value: []byte("c")}, {ts: 200}}},
		{"negative timestamps", []extMsg{{ts: -5}, {ts: -1 << 40}, {ts: 3}}},
		{"extreme timestamps wrap", []extMsg{{ts: math.MinInt64}, {ts: math.MaxInt64}, {ts: 0}, {ts: math.MinInt64 + 1}}},
		{"large fields", []extMsg{{ts: 9, key: bytes.Repeat([]byte("k"), 300), value: bytes.Repeat([]byte("v"), 70000),
			hdrs: []record.MessageHeader{{Key: string(bytes.Repeat([]byte("h"), 200)), Value: bytes.Repeat([]byte("x"), 20000)}}}}},
		{"10000 seeded", extMsgs(11, 10_000)},
	}
	var b record.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batch := buildExt(t, &b, tt.msgs, record.CodecNone)
			h, got := decodeAll(t, batch)
			if h.Flags != record.FlagExtended || h.Count != uint32(len(tt.msgs)) {
				t.Fatalf("flags %#x, count %d", h.Flags, h.Count)
			}
			checkExt(t, got, tt.msgs)
			// Messages (the uncompressed shortcut) serves the values.
			it := record.Messages(batch, &h)
			i := 0
			for v, ok := it.Next(); ok; v, ok = it.Next() {
				if !bytes.Equal(v, tt.msgs[i].value) || cap(v) != len(v) {
					t.Fatalf("value %d: %q (cap %d)", i, v, cap(v))
				}
				i++
			}
			if it.Err() != nil || i != len(tt.msgs) {
				t.Fatalf("Next: %d, %v", i, it.Err())
			}
			// The batch size is what Size said before Finish.
			if b.Size() != len(batch) {
				t.Fatalf("Size %d, batch %d bytes", b.Size(), len(batch))
			}
		})
	}
}

// TestBuilderSwitchToExtended: plain messages added before the first
// AddMessage are re-encoded once; Add after it adds bare extended
// messages.
func TestBuilderSwitchToExtended(t *testing.T) {
	var b record.Builder
	b.Reset()
	b.Add([]byte("plain-1"))
	b.Add(nil)
	if err := b.AddMessage(1700000000000000000, []byte("k"), []byte("ext"), []record.MessageHeader{{Key: "a", Value: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	b.Add([]byte("plain-2"))
	if b.Len() != 4 {
		t.Fatalf("Len %d", b.Len())
	}
	batch, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	_, got := decodeAll(t, batch)
	checkExt(t, got, []extMsg{
		{value: []byte("plain-1")},
		{},
		{ts: 1700000000000000000, key: []byte("k"), value: []byte("ext"), hdrs: []record.MessageHeader{{Key: "a", Value: []byte("b")}}},
		{value: []byte("plain-2")},
	})
	// Reset goes back to the plain encoding.
	b.Reset()
	b.Add([]byte("x"))
	plain, _ := b.Finish()
	if !bytes.Equal(plain, appendBatch(t, nil, []byte("x"))) {
		t.Fatal("plain batch after an extended one differs")
	}
}

// ext encodes an extended payload by hand: the base timestamp, then each
// message given as its fields after the length varint.
func ext(base int64, msgs ...[]byte) []byte {
	p := binary.LittleEndian.AppendUint64(nil, uint64(base))
	for _, m := range msgs {
		p = binary.AppendUvarint(p, uint64(len(m)))
		p = append(p, m...)
	}
	return p
}

func TestExtendedMalformed(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		count   uint32
		want    int // messages decoded before the stop
		wantErr error
	}{
		{"valid", ext(10, []byte{2, 1, 'k', 1, 1, 'a', 1, 'b', 'v'}), 1, 1, nil},
		{"valid minimal", ext(10, []byte{0, 0, 0}), 1, 1, nil},
		{"no base timestamp", []byte{1, 2, 3}, 1, 0, record.ErrCorrupt},
		{"base only, count 1", ext(10), 1, 0, record.ErrCorrupt},
		{"empty message", ext(10, []byte{}), 1, 0, record.ErrCorrupt},
		{"timestamp varint cut", ext(10, []byte{0x80}), 1, 0, record.ErrCorrupt},
		{"key length missing", ext(10, []byte{0}), 1, 0, record.ErrCorrupt},
		{"key past message", ext(10, []byte{0, 5, 'k'}), 1, 0, record.ErrCorrupt},
		{"header count missing", ext(10, []byte{0, 0}), 1, 0, record.ErrCorrupt},
		{"header count too large", ext(10, []byte{0, 0, 2, 0, 0}), 1, 0, record.ErrCorrupt},
		{"header count huge", ext(10, []byte{0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}), 1, 0, record.ErrCorrupt},
		{"header key past message", ext(10, []byte{0, 0, 1, 9, 0}), 1, 0, record.ErrCorrupt},
		{"header value past message", ext(10, []byte{0, 0, 1, 0, 9}), 1, 0, record.ErrCorrupt},
		{"header value length missing", ext(10, []byte{0, 0, 1, 1, 'a', 0x80}), 1, 0, record.ErrCorrupt},
		{"message length past payload", append(ext(10), 9, 0, 0, 0), 1, 0, record.ErrCorrupt},
		{"second message bad", ext(10, []byte{0, 0, 0, 'a'}, []byte{0, 3}), 2, 1, record.ErrCorrupt},
		{"leftover bytes", append(ext(10, []byte{0, 0, 0}), 0), 1, 1, record.ErrCorrupt},
		{"fewer messages than count", ext(10, []byte{0, 0, 0}), 2, 1, record.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := record.Header{Flags: record.FlagExtended, Count: tt.count}
			var it record.Iter
			it.ResetPayload(tt.payload, &h)
			n := 0
			for _, ok := it.NextMessage(); ok; _, ok = it.NextMessage() {
				n++
			}
			if n != tt.want {
				t.Fatalf("%d messages, want %d", n, tt.want)
			}
			wantErr(t, "Err", it.Err(), tt.wantErr)
			if _, ok := it.NextMessage(); ok {
				t.Fatal("NextMessage after the stop")
			}
			// Next stops at the same place.
			it.ResetPayload(tt.payload, &h)
			n = 0
			for _, ok := it.Next(); ok; _, ok = it.Next() {
				n++
			}
			if n != tt.want || !errors.Is(it.Err(), tt.wantErr) && (tt.wantErr != nil || it.Err() != nil) {
				t.Fatalf("Next: %d messages, %v", n, it.Err())
			}
		})
	}
}

// TestPlainNextMessage: NextMessage over a plain payload gives bare
// messages.
func TestPlainNextMessage(t *testing.T) {
	batch := appendBatch(t, nil, []byte("a"), nil)
	h, _ := record.Verify(batch)
	it := record.Messages(batch, &h)
	m, ok := it.NextMessage()
	hi := m.Headers()
	if _, _, hok := hi.Next(); !ok || string(m.Value) != "a" || m.Key != nil || m.Timestamp != 0 || m.NumHeaders() != 0 || hok {
		t.Fatalf("%+v %v", m, ok)
	}
}

func TestAddMessageTooLarge(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("needs 1 GiB of address space")
	}
	var b record.Builder
	b.Reset()
	b.Add([]byte("small"))
	// The Builder checks before copying, so the untouched allocation
	// costs address space, not memory.
	huge := make([]byte, record.MaxBatchSize-64)
	if err := b.AddMessage(1, nil, huge, nil); !errors.Is(err, record.ErrTooLarge) {
		t.Fatalf("AddMessage(%d bytes) = %v, want ErrTooLarge", len(huge), err)
	}
	if b.Len() != 1 {
		t.Fatalf("rejected AddMessage changed the builder: Len %d", b.Len())
	}
	batch, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(batch, appendBatch(t, nil, []byte("small"))) {
		t.Fatal("rejected AddMessage switched the builder to extended")
	}
}
