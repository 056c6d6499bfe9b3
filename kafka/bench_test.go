package kafka

import (
	"bytes"
	"testing"

	"github.com/haraqa/haraqa/record"
)

// BenchmarkConvertProduce: one Kafka batch of 8,000 records of 100 bytes
// (no key, no headers) into a haraqa batch, as Produce does.
func BenchmarkConvertProduce(b *testing.B) {
	var recs []testRec
	for range 8000 {
		recs = append(recs, testRec{value: string(bytes.Repeat([]byte("x"), 100))})
	}
	kb := kafkaBatch(b, codecNone, false, -1, -1, -1, recs...)
	s := &Server{opts: Options{}.withDefaults()}
	c := &conn{s: s}
	b.SetBytes(int64(len(kb)))
	b.ReportAllocs()
	pb := new(produceBuf)
	for b.Loop() {
		if _, _, err := c.convert(pb, kb); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeFetch: one haraqa batch of 8,000 messages of 100 bytes
// re-encoded as a Kafka record batch, as Fetch does.
func BenchmarkEncodeFetch(b *testing.B) {
	var bld record.Builder
	for range 8000 {
		bld.AddMessage(1_700_000_000_000_000_000, nil, bytes.Repeat([]byte("x"), 100), nil)
	}
	batch, _ := bld.Finish()
	h, err := record.Verify(batch)
	if err != nil {
		b.Fatal(err)
	}
	raw := batch[record.HeaderSize : record.HeaderSize+int(h.PayloadLen)]
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		out, _ = appendKafka(out[:0], &h, raw, 0)
	}
}
