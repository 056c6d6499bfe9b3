package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/haraqa/haraqa/record"
)

// A consumed message is indexed without pointer writes: its reference is
// small and holds no pointers, so indexing a large read costs neither
// write barriers nor clearing, and the client keeps up with the broker.
func TestMsgRefIsSmallAndPointerFree(t *testing.T) {
	if s := unsafe.Sizeof(msgRef{}); s > 16 {
		t.Errorf("msgRef is %d bytes, want at most 16", s)
	}
	typ := reflect.TypeOf(msgRef{})
	for i := range typ.NumField() {
		switch typ.Field(i).Type.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.String, reflect.Interface, reflect.Map, reflect.Func, reflect.Chan, reflect.Struct, reflect.Array:
			t.Errorf("msgRef field %s is a %v: want plain integers", typ.Field(i).Name, typ.Field(i).Type)
		}
	}
}

// rehash rewrites a batch's payload hash (and header hash) after a test
// changed its payload, so that only the message encoding is wrong.
func rehash(t *testing.T, b []byte) {
	t.Helper()
	h, err := record.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	var old [8]byte
	binary.LittleEndian.PutUint64(old[:], h.PayloadHash)
	i := bytes.Index(b[:record.HeaderSize], old[:])
	if i < 0 {
		t.Fatal("payload hash not found in the header")
	}
	binary.LittleEndian.PutUint64(b[i:], xxhash.Sum64(b[record.HeaderSize:record.HeaderSize+int(h.PayloadLen)]))
	record.Stamp(b, h.BaseOffset, h.AppendTime)
	if _, err := record.Verify(b); err != nil {
		t.Fatal(err)
	}
}

// A batch whose checksums hold but whose messages are malformed (a length
// that runs past the payload, bytes left after the last message) is never
// handed out as messages: Consume's indexing reports ErrCorrupt.
func TestIndexRejectsMalformedPlainPayload(t *testing.T) {
	build := func() []byte {
		b, err := record.AppendBatch(nil, []byte("aaaa"), []byte("bbbb"), []byte("cccc"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string]func(p []byte){
		"length past payload": func(p []byte) { p[5] = 100 },              // second message claims 100 bytes
		"bytes after last":    func(p []byte) { p[10] = 3 },               // third message one byte short
		"huge varint":         func(p []byte) { p[0], p[1] = 0xff, 0xff }, // a length that does not fit
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			b := build()
			spoil(b[record.HeaderSize:])
			rehash(t, b)
			var buf ConsumeBuffer
			buf.raw = b
			ix := indexer{buf: &buf, topic: "t", maxRaw: 1 << 20}
			err := ix.index(0, 1<<62)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("index = %v, want ErrCorrupt", err)
			}
		})
	}
	// Unspoiled, the same batch gives its three messages, and a trimmed
	// read the ones in range.
	var buf ConsumeBuffer
	buf.raw = build()
	buf.msgs.first = 1
	ix := indexer{buf: &buf, topic: "t", maxRaw: 1 << 20}
	if err := ix.index(1, 1); err != nil {
		t.Fatal(err)
	}
	if m := &buf.msgs; m.Len() != 1 || string(m.At(0).Value) != "bbbb" || m.At(0).Key != nil || m.Err(0) != nil {
		t.Fatalf("trimmed read: %d messages, first %q", m.Len(), m.At(0).Value)
	}
}

// The offset a Consumer sends its read-ahead from, taken from the batch
// headers before the response is verified, is where indexing the
// response ends: plain batches, a message limit inside a batch, and
// compressed batches cut short by the decompression budget.
func TestPredictNextMatchesIndex(t *testing.T) {
	msgs := make([][]byte, 50)
	for i := range msgs {
		msgs[i] = bytes.Repeat([]byte{byte(i)}, 100)
	}
	build := func(codec record.Codec) []byte {
		var raw []byte
		for k := range 6 {
			var b record.Builder
			for _, m := range msgs {
				if err := b.Add(m); err != nil {
					t.Fatal(err)
				}
			}
			batch, err := b.FinishCodec(codec)
			if err != nil {
				t.Fatal(err)
			}
			batch = append([]byte(nil), batch...)
			record.Stamp(batch, uint64(100+k*50), 1)
			raw = append(raw, batch...)
		}
		return raw
	}
	for _, tc := range []struct {
		name          string
		codec         record.Codec
		offset, limit uint64
		maxRaw        int
		want          uint64
	}{
		{"plain", record.CodecNone, 100, 1 << 62, 64 << 20, 400},
		{"plain from inside", record.CodecNone, 130, 1 << 62, 64 << 20, 400},
		{"plain limit", record.CodecNone, 130, 77, 64 << 20, 207},
		{"zstd", record.CodecZstd, 100, 1 << 62, 64 << 20, 400},
		{"zstd budget", record.CodecZstd, 120, 1 << 62, 12000, 200}, // two batches of 5,050 raw bytes
		{"zstd limit", record.CodecZstd, 120, 95, 64 << 20, 215},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := &ConsumeBuffer{raw: build(tc.codec)}
			buf.msgs.first = tc.offset
			ix := indexer{buf: buf, topic: "t", maxRaw: tc.maxRaw}
			if err := ix.index(tc.offset, tc.limit); err != nil {
				t.Fatal(err)
			}
			if next := buf.msgs.Next(); next != tc.want {
				t.Fatalf("index ends at %d, want %d", next, tc.want)
			}
			if got := predictNext(buf.raw, tc.offset, tc.limit, tc.maxRaw); got != tc.want {
				t.Fatalf("predicted %d, index ends at %d", got, tc.want)
			}
		})
	}
}
