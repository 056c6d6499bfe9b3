package client_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// BenchmarkMultiProducer sends 100-byte messages through one
// MultiProducer, round-robin over 1 or 100 topics (batches of up to 1,000,
// 4 in flight), and through a one-topic Producer with the same options:
// the many-topic rate against the one-topic rate of the same run.
func BenchmarkMultiProducer(b *testing.B) {
	for _, tc := range []struct {
		name   string
		topics int
		single bool
	}{{"producer-1topic", 1, true}, {"multi-1topic", 1, false}, {"multi-100topics", 100, false}} {
		b.Run(tc.name, func(b *testing.B) {
			c := dialProcess(b, startBrokerProcess(b, "tcp"))
			ctx := context.Background()
			names := make([]string, tc.topics)
			for i := range names {
				names[i] = "bench-" + strconv.Itoa(i)
				createTopic(b, c, names[i])
			}
			opts := []client.ProducerOption{client.ProducerMaxMessages(benchPerBatch), client.ProducerMaxInFlight(4)}
			msg := make([]byte, benchMsgSize)
			b.ReportAllocs()
			b.ResetTimer()
			if tc.single {
				p := client.NewProducer(c, names[0], opts...)
				for range b.N {
					if err := p.Send(ctx, msg); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Close(ctx); err != nil {
					b.Fatal(err)
				}
			} else {
				p := client.NewMultiProducer(c, opts...)
				for i := range b.N {
					if err := p.Send(ctx, names[i%len(names)], msg); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Close(ctx); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, b.N)
			b.StopTimer()
			var total uint64
			for _, name := range names {
				_, end, err := c.Offsets(ctx, name)
				if err != nil {
					b.Fatal(err)
				}
				total += end
			}
			if total != uint64(b.N) {
				b.Fatalf("stored %d of %d", total, b.N)
			}
		})
	}
}

// BenchmarkAESGCM is the cost of client-side encryption per message: Seal
// and Open of one value with AES-256-GCM (CPU only, no broker).
func BenchmarkAESGCM(b *testing.B) {
	a, err := client.NewAESGCM(map[string][]byte{"k1": bytes.Repeat([]byte{7}, 32)}, "k1")
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{100, 4096} {
		value := bytes.Repeat([]byte("v"), size)
		b.Run(fmt.Sprintf("seal/%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for range b.N {
				m := client.Message{Value: value}
				if err := a.Seal("topic", &m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("open/%dB", size), func(b *testing.B) {
			m := client.Message{Value: value}
			if err := a.Seal("topic", &m); err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for range b.N {
				out, err := a.Open(dst[:0], "topic", &m)
				if err != nil || len(out) != size {
					b.Fatal(err)
				}
			}
		})
	}
}

var encTopics int // BenchmarkProducerEncrypted's topics, one per run

// BenchmarkProducerEncrypted sends 100 B and 4 KiB values through a
// Producer with and without WithTransformer(AESGCM), against the broker
// process: what encryption costs end to end.
func BenchmarkProducerEncrypted(b *testing.B) {
	a, err := client.NewAESGCM(map[string][]byte{"k1": bytes.Repeat([]byte{7}, 32)}, "k1")
	if err != nil {
		b.Fatal(err)
	}
	addr := startBrokerProcess(b, "tcp")
	for _, size := range []int{100, 4096} {
		for _, enc := range []bool{false, true} {
			name := fmt.Sprintf("%dB/plain", size)
			var opts []client.Option
			if enc {
				name = fmt.Sprintf("%dB/aesgcm", size)
				opts = append(opts, client.WithTransformer(a))
			}
			b.Run(name, func(b *testing.B) {
				c := dialProcess(b, addr, opts...)
				ctx := context.Background()
				encTopics++
				topic := fmt.Sprintf("enc-%d", encTopics)
				createTopic(b, c, topic)
				p := client.NewProducer(c, topic, client.ProducerMaxInFlight(4))
				value := bytes.Repeat([]byte("v"), size)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				b.ResetTimer()
				for range b.N {
					if err := p.Send(ctx, value); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Close(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkMultiProducerPaired measures the 100-topic MultiProducer
// against the one-topic Producer in alternating rounds on one broker
// process (same options: batches of up to 1,000, 4 in flight), so that
// load from elsewhere on a shared machine hits both alike. It reports
// each side's median rate and the median of the per-round ratios
// (many/one). -short: 3 rounds of 20,000 messages; else 25 of 200,000.
func BenchmarkMultiProducerPaired(b *testing.B) {
	rounds, n := 25, 200_000
	if testing.Short() {
		rounds, n = 3, 20_000
	}
	c := dialProcess(b, startBrokerProcess(b, "tcp"))
	ctx := context.Background()
	names := make([]string, 100)
	for i := range names {
		names[i] = "paired-" + strconv.Itoa(i)
		createTopic(b, c, names[i])
	}
	createTopic(b, c, "paired-one")
	opts := []client.ProducerOption{client.ProducerMaxMessages(benchPerBatch), client.ProducerMaxInFlight(4)}
	msg := make([]byte, benchMsgSize)
	// Long-lived producers, as in a service: each round ends with a
	// Flush, so it counts until every message is acknowledged.
	p := client.NewProducer(c, "paired-one", opts...)
	mp := client.NewMultiProducer(c, opts...)
	defer p.Close(ctx)
	defer mp.Close(ctx)
	var one, many, ratio []float64
	for range b.N {
		for range rounds {
			start := time.Now()
			for range n {
				if err := p.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			r1 := float64(n) / time.Since(start).Seconds()
			start = time.Now()
			for i := range n {
				if err := mp.Send(ctx, names[i%len(names)], msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := mp.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			r100 := float64(n) / time.Since(start).Seconds()
			one, many, ratio = append(one, r1), append(many, r100), append(ratio, r100/r1)
		}
	}
	b.ReportMetric(median(one), "1topic-msgs/s")
	b.ReportMetric(median(many), "100topics-msgs/s")
	b.ReportMetric(median(ratio), "many/one")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
