package realclients

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/record"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func kgoClient(t *testing.T, b *broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.kafkaAddr), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testRecord(i int) *kgo.Record {
	return &kgo.Record{
		Key:       fmt.Appendf(nil, "key-%d", i),
		Value:     fmt.Appendf(nil, "value %d %s", i, bytes.Repeat([]byte{'x'}, i%50)),
		Headers:   []kgo.RecordHeader{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}, {Key: "empty"}},
		Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)),
	}
}

// Promise: records franz-go produces (every compression codec, idempotent
// by default) read back through franz-go and through haraqa's native Go
// client with the same keys, values, headers and timestamps, in order;
// and messages the native client produces read back through franz-go the
// same way.
func TestKgoProduceConsumeRoundTrip(t *testing.T) {
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	const perCodec = 400
	var want []*kgo.Record
	for ci, codec := range codecs {
		p := kgoClient(t, b, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic("rt"), kgo.ProducerLinger(time.Millisecond))
		for i := range perCodec {
			r := testRecord(ci*perCodec + i)
			want = append(want, r)
			p.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// franz-go reads them back.
	c := kgoClient(t, b, kgo.ConsumeTopics("rt"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []*kgo.Record
	for len(got) < len(want) {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("got %d of %d records: %v", len(got), len(want), err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		got = append(got, fs.Records()...)
	}
	for i, r := range got {
		w := want[i]
		if r.Offset != int64(i) || !bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) ||
			!r.Timestamp.Equal(w.Timestamp) || len(r.Headers) != 2 || r.Headers[0].Key != "n" ||
			!bytes.Equal(r.Headers[0].Value, w.Headers[0].Value) || r.Headers[1].Key != "empty" || len(r.Headers[1].Value) != 0 {
			t.Fatalf("record %d: got %+v, want %+v", i, r, w)
		}
	}
	// The native client sees the same messages.
	nc := b.native(t)
	var buf client.ConsumeBuffer
	for off := uint64(0); off < uint64(len(want)); {
		ms, err := nc.Consume(ctx, "rt", off, 0, &buf)
		if err != nil {
			t.Fatal(err)
		}
		for m := range ms.All() {
			w := want[m.Offset]
			if !bytes.Equal(m.Key, w.Key) || !bytes.Equal(m.Value, w.Value) || !m.Timestamp.Equal(w.Timestamp) ||
				len(m.Headers) != 2 || m.Headers[0].Key != "n" || !bytes.Equal(m.Headers[0].Value, w.Headers[0].Value) {
				t.Fatalf("native read of offset %d: %+v, want %+v", m.Offset, m, w)
			}
		}
		off = ms.Next()
	}
	// And the other way: native produce, franz-go consume.
	var msgs []client.Message
	for i := range 50 {
		msgs = append(msgs, client.Message{Key: fmt.Appendf(nil, "nk%d", i), Value: fmt.Appendf(nil, "nv%d", i),
			Headers:   []record.MessageHeader{{Key: "h", Value: []byte("v")}},
			Timestamp: time.UnixMilli(1_600_000_000_000 + int64(i))})
	}
	if _, err := nc.ProduceMessages(ctx, "native", msgs...); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Produce(ctx, "native", []byte("plain")); err != nil {
		t.Fatal(err)
	}
	c2 := kgoClient(t, b, kgo.ConsumeTopics("native"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got = got[:0]
	for len(got) < 51 {
		fs := c2.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("got %d of 51: %v", len(got), err)
		}
		got = append(got, fs.Records()...)
	}
	for i, r := range got[:50] {
		m := msgs[i]
		if !bytes.Equal(r.Key, m.Key) || !bytes.Equal(r.Value, m.Value) || !r.Timestamp.Equal(m.Timestamp) ||
			len(r.Headers) != 1 || r.Headers[0].Key != "h" || string(r.Headers[0].Value) != "v" {
			t.Fatalf("kgo read of native message %d: %+v", i, r)
		}
	}
	if p := got[50]; p.Key != nil || string(p.Value) != "plain" || len(p.Headers) != 0 || p.Timestamp.IsZero() {
		t.Fatalf("plain message: %+v (want no key, no headers, the append time)", p)
	}
}

// Promise: ListOffsets through franz-go answers earliest, latest and "the
// first offset stored at or after a time".
func TestKgoListOffsetsByTime(t *testing.T) {
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cl := kgoClient(t, b, kgo.DefaultProduceTopic("lo"))
	produce := func(n int) {
		for i := range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(10)
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	produce(5)
	list := func(ts int64) (int64, int16) {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "lo"
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = ts
		rt.Partitions = append(rt.Partitions, p)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		rp := resp.Topics[0].Partitions[0]
		return rp.Offset, rp.ErrorCode
	}
	for _, c := range []struct {
		name string
		ts   int64
		want int64
	}{{"earliest", -2, 0}, {"latest", -1, 15}, {"by time", mid.UnixMilli(), 10}, {"past the end", time.Now().Add(time.Hour).UnixMilli(), -1}} {
		if off, code := list(c.ts); off != c.want || code != 0 {
			t.Errorf("%s: offset %d code %d, want %d", c.name, off, code, c.want)
		}
	}
}
