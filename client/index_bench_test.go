package client

import (
	"fmt"
	"testing"

	"github.com/haraqa/haraqa/record"
)

// indexBenchRaw is a consume response as the broker sends it: batches of
// 1,000 100-byte messages, stamped with dense offsets, about 16 MiB.
func indexBenchRaw(tb testing.TB, batches int) []byte {
	msgs := make([][]byte, 1000)
	for i := range msgs {
		msgs[i] = make([]byte, 100)
		copy(msgs[i], fmt.Sprintf("message %d", i))
	}
	var raw []byte
	for k := range batches {
		b, err := record.AppendBatch(nil, msgs...)
		if err != nil {
			tb.Fatal(err)
		}
		record.Stamp(b, uint64(k*1000), 1)
		raw = append(raw, b...)
	}
	return raw
}

// BenchmarkIndexConsume is the client's per-message work on a consume
// response without the network: verify every batch, index its messages,
// then read every message's value as a consumer does (At). Run under
// callgrind for instruction counts that do not depend on the machine's
// load.
func BenchmarkIndexConsume(b *testing.B) {
	const batches = 160
	raw := indexBenchRaw(b, batches)
	var buf ConsumeBuffer
	buf.raw = raw
	b.ReportAllocs()
	b.ResetTimer()
	var sum int
	for range b.N {
		n, err := indexAndRead(&buf)
		if err != nil {
			b.Fatal(err)
		}
		sum += n
	}
	if sum != b.N*batches*1000*100 {
		b.Fatalf("read %d bytes", sum)
	}
	b.ReportMetric(float64(b.N*batches*1000)/b.Elapsed().Seconds(), "msgs/s")
}

// indexAndRead is one consume's client-side work on buf.raw, a function
// of its own so that callgrind reports its inclusive instruction count
// per call.
//
//go:noinline
func indexAndRead(buf *ConsumeBuffer) (int, error) {
	buf.msgs.first = 0
	buf.msgs.reset()
	ix := indexer{buf: buf, topic: "t", maxRaw: 64 << 20}
	if err := ix.index(0, 1<<62); err != nil {
		return 0, err
	}
	m := &buf.msgs
	sum := 0
	for i := range m.Len() {
		sum += len(m.At(i).Value)
	}
	return sum, nil
}

// BenchmarkWalkConsume is what a Consumer does with the same response:
// verify each batch and yield its messages as it goes (Client.walk),
// without indexing the response first.
func BenchmarkWalkConsume(b *testing.B) {
	const batches = 160
	var buf ConsumeBuffer
	buf.raw = indexBenchRaw(b, batches)
	c := &Client{}
	c.cfg.maxBody = 64 << 20
	b.ReportAllocs()
	b.ResetTimer()
	var sum int
	for range b.N {
		n, err := walkAndRead(c, &buf)
		if err != nil {
			b.Fatal(err)
		}
		sum += n
	}
	if sum != b.N*batches*1000*100 {
		b.Fatalf("read %d bytes", sum)
	}
	b.ReportMetric(float64(b.N*batches*1000)/b.Elapsed().Seconds(), "msgs/s")
}

// walkAndRead is walk's counterpart of indexAndRead.
//
//go:noinline
func walkAndRead(c *Client, buf *ConsumeBuffer) (int, error) {
	buf.msgs.first, buf.msgs.limit, buf.msgs.topic = 0, 1<<62, "t"
	buf.msgs.reset()
	sum := 0
	var next uint64
	_, err := c.walk(buf, &next, func(m Message, err error) bool {
		sum += len(m.Value)
		return err == nil
	})
	return sum, err
}
