package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
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

// A Consumer's walk over a response yields exactly what indexing it and
// reading every message with At gives: the same offsets, values, keys,
// timestamps, headers and append times, for plain, extended and
// compressed batches, any start inside the first batch, any message
// limit and a decompression budget that ends the read early.
func TestWalkMatchesIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type kind struct {
		codec    record.Codec
		extended bool
	}
	kinds := []kind{{record.CodecNone, false}, {record.CodecNone, true}, {record.CodecZstd, false}, {record.CodecS2, true}}
	refused := 0
	const rounds = 200
	defer func() {
		if refused > rounds/4 {
			t.Errorf("%d of %d rounds refused the first batch: too few compared", refused, rounds)
		}
	}()
	for round := range rounds {
		var raw []byte
		base := uint64(1000)
		next := base
		for range 1 + rng.IntN(6) {
			k := kinds[rng.IntN(len(kinds))]
			var b record.Builder
			n := 1 + rng.IntN(40)
			for i := range n {
				v := bytes.Repeat([]byte{byte(round), byte(i)}, rng.IntN(200))
				var err error
				if k.extended {
					var hdrs []record.MessageHeader
					if i%3 == 0 {
						hdrs = []record.MessageHeader{{Key: "h", Value: []byte{byte(i)}}}
					}
					err = b.AddMessage(int64(i)*7, []byte{'k', byte(i)}, v, hdrs)
				} else {
					err = b.Add(v)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			batch, err := b.FinishCodec(k.codec)
			if err != nil {
				t.Fatal(err)
			}
			batch = append([]byte(nil), batch...)
			record.Stamp(batch, next, int64(next)*1e6)
			next += uint64(n)
			raw = append(raw, batch...)
		}
		first, _ := record.ParseHeader(raw)
		offset := base + uint64(rng.IntN(int(first.Count)))
		limit := uint64(1 << 62)
		if rng.IntN(2) == 0 {
			limit = uint64(1 + rng.IntN(int(next-offset)))
		}
		maxRaw := 64 << 20
		if rng.IntN(3) == 0 {
			maxRaw = 1 + rng.IntN(8000)
		}

		want := &ConsumeBuffer{raw: raw}
		want.msgs.first, want.msgs.topic = offset, "t"
		ix := indexer{buf: want, topic: "t", maxRaw: maxRaw}
		ierr := ix.index(offset, limit)
		var wantMsgs []string
		if ierr == nil {
			for i := range want.msgs.Len() {
				wantMsgs = append(wantMsgs, fmt.Sprintf("%+v", want.msgs.At(i)))
			}
		}

		got := &ConsumeBuffer{raw: raw}
		got.msgs.first, got.msgs.limit, got.msgs.topic = offset, limit, "t"
		c := &Client{}
		c.cfg.maxBody = uint32(maxRaw)
		var gotMsgs []string
		var pos uint64
		more, err := c.walk(got, &pos, func(m Message, err error) bool {
			if err != nil {
				t.Fatalf("round %d: message error %v", round, err)
			}
			gotMsgs = append(gotMsgs, fmt.Sprintf("%+v", m))
			return true
		})
		if ierr != nil {
			// Only the first batch can fail here (over the budget alone):
			// both refuse it, and nothing is yielded.
			if err == nil || err.Error() != ierr.Error() || len(gotMsgs) != 0 {
				t.Fatalf("round %d: index: %v; walk: %v after %d messages", round, ierr, err, len(gotMsgs))
			}
			refused++
			continue
		}
		if !more || err != nil {
			t.Fatalf("round %d: walk: %v, %v", round, more, err)
		}
		if fmt.Sprint(gotMsgs) != fmt.Sprint(wantMsgs) {
			t.Fatalf("round %d (offset %d, limit %d, maxRaw %d): walk yielded\n%v\nindex gives\n%v", round, offset, limit, maxRaw, gotMsgs, wantMsgs)
		}
		if len(wantMsgs) > 0 && pos != want.msgs.Next() {
			t.Fatalf("round %d: walk ends at %d, index at %d", round, pos, want.msgs.Next())
		}
		if p := predictNext(raw, offset, limit, maxRaw); p != want.msgs.Next() {
			t.Fatalf("round %d: predicted %d, index ends at %d", round, p, want.msgs.Next())
		}
	}
}
