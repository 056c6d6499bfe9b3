package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/record"
)

// The benchmarks run the broker in a child process (fsync=never, over
// TCP), so that ns/op, B/op and allocs/op are the client's.

const (
	benchMsgSize  = 100
	benchPerBatch = 1000
)

func benchBatch(b *testing.B) []byte {
	msgs := make([][]byte, benchPerBatch)
	for i := range msgs {
		msgs[i] = make([]byte, benchMsgSize)
		copy(msgs[i], fmt.Sprintf("message %d", i))
	}
	batch, err := record.AppendBatch(nil, msgs...)
	if err != nil {
		b.Fatal(err)
	}
	return batch
}

// reportRate reports messages and payload bytes per second for n
// messages.
func reportRate(b *testing.B, n int) {
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(n)/s, "msgs/s")
	b.ReportMetric(float64(n*benchMsgSize)/s/1e6, "MB/s")
}

// BenchmarkProduceBatch sends pre-built batches of 1,000 100-byte messages
// from several goroutines at once: that many batches are in flight on the
// one connection.
func BenchmarkProduceBatch(b *testing.B) {
	for _, inFlight := range []int{1, 4} {
		b.Run(fmt.Sprintf("inflight=%d", inFlight), func(b *testing.B) {
			c := dialProcess(b, startBrokerProcess(b, "tcp"))
			ctx := context.Background()
			createTopic(b, c, "bench")
			batch := benchBatch(b)
			b.ReportAllocs()
			var wg sync.WaitGroup
			ops := make(chan struct{}, inFlight)
			b.ResetTimer()
			go func() {
				for range b.N {
					ops <- struct{}{}
				}
				close(ops)
			}()
			for range inFlight {
				wg.Go(func() {
					for range ops {
						if _, err := c.ProduceBatch(ctx, "bench", batch); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			reportRate(b, b.N*benchPerBatch)
		})
	}
}

// BenchmarkProducer sends 100-byte messages one by one through a Producer
// that cuts batches of 1,000.
func BenchmarkProducer(b *testing.B) {
	for _, inFlight := range []int{1, 4} {
		b.Run(fmt.Sprintf("inflight=%d", inFlight), func(b *testing.B) {
			c := dialProcess(b, startBrokerProcess(b, "tcp"))
			ctx := context.Background()
			createTopic(b, c, "bench")
			p := client.NewProducer(c, "bench", client.ProducerMaxMessages(benchPerBatch), client.ProducerMaxInFlight(inFlight))
			msg := make([]byte, benchMsgSize)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := p.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
			reportRate(b, b.N)
		})
	}
}

// BenchmarkConsume reads batches of 1,000 100-byte messages back into a
// warm ConsumeBuffer, verifying every batch.
func BenchmarkConsume(b *testing.B) {
	c := dialProcess(b, startBrokerProcess(b, "tcp"))
	ctx := context.Background()
	createTopic(b, c, "bench")
	batch := benchBatch(b)
	const batches = 200
	for range batches {
		if _, err := c.ProduceBatch(ctx, "bench", batch); err != nil {
			b.Fatal(err)
		}
	}
	var buf client.ConsumeBuffer
	b.ReportAllocs()
	b.ResetTimer()
	off, n := uint64(0), 0
	for range b.N {
		msgs, err := c.Consume(ctx, "bench", off, benchPerBatch, &buf)
		if err != nil {
			b.Fatal(err)
		}
		n += msgs.Len()
		if off = msgs.Next(); off == batches*benchPerBatch {
			off = 0
		}
	}
	reportRate(b, n)
}

// BenchmarkProduceLatency is the round trip of one synchronous Produce of
// one 100-byte message.
func BenchmarkProduceLatency(b *testing.B) {
	c := dialProcess(b, startBrokerProcess(b, "tcp"))
	ctx := context.Background()
	createTopic(b, c, "bench")
	msg := make([]byte, benchMsgSize)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := c.Produce(ctx, "bench", msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/produce")
	reportRate(b, b.N)
}
