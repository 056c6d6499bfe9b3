package client_test

import (
	"context"
	"testing"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/server"
)

// The compression benchmarks run on JSON access-log lines (logLine, about
// 200 bytes each, seeded), in batches of 1,000, through a real broker in
// this process (TCP, fsync never), so that the broker's work counts too:
//
//	go test ./client -run='^$' -bench='Codec' -benchtime=2s
//
// MB/s counts the raw (uncompressed) message bytes.

const codecBatch = 1000

// codecLines returns n log lines and their total size.
func codecLines(n int) ([][]byte, int) {
	lines := make([][]byte, n)
	total := 0
	for i := range lines {
		lines[i] = logLine(uint64(i))
		total += len(lines[i])
	}
	return lines, total
}

func reportCodec(b *testing.B, msgs, bytes int) {
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(msgs)/s, "msgs/s")
	b.ReportMetric(float64(bytes)/s/1e6, "MB/s")
}

// BenchmarkCodecRatio compresses batches of 1,000 lines: the ratio of raw
// payload to stored payload, and the speed of FinishCodec plus
// Decompress.
func BenchmarkCodecRatio(b *testing.B) {
	lines, total := codecLines(10 * codecBatch)
	for _, codec := range codecs {
		b.Run(codec.String(), func(b *testing.B) {
			var bld record.Builder
			dst := make([]byte, 0, 1<<20)
			raw, stored, msgs := 0, 0, 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				bld.Reset()
				first := (i % 10) * codecBatch
				for _, l := range lines[first : first+codecBatch] {
					bld.Add(l)
				}
				batch, err := bld.FinishCodec(codec)
				if err != nil {
					b.Fatal(err)
				}
				h, _ := record.Verify(batch)
				if _, err := record.Decompress(dst, batch, &h, 0); err != nil {
					b.Fatal(err)
				}
				raw += int(h.RawLen)
				stored += int(h.PayloadLen)
				msgs += codecBatch
			}
			b.ReportMetric(float64(raw)/float64(stored), "ratio")
			reportCodec(b, msgs, msgs*total/len(lines))
		})
	}
}

// BenchmarkCodecProduce sends lines one by one through a Producer that
// cuts batches of 1,000 and compresses them.
func BenchmarkCodecProduce(b *testing.B) {
	lines, total := codecLines(10 * codecBatch)
	for _, codec := range codecs {
		b.Run(codec.String(), func(b *testing.B) {
			br := startBroker(b, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
			c := br.dial()
			ctx := context.Background()
			createTopic(b, c, "bench")
			p := client.NewProducer(c, "bench", client.ProducerCompression(codec), client.ProducerMaxMessages(codecBatch))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if err := p.Send(ctx, lines[n%len(lines)]); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
			reportCodec(b, n, n*total/len(lines))
		})
	}
}

// BenchmarkCodecConsume reads 200 stored batches of 1,000 lines back into
// a warm ConsumeBuffer: verify, decompress, index.
func BenchmarkCodecConsume(b *testing.B) {
	lines, total := codecLines(codecBatch)
	const batches = 200
	for _, codec := range codecs {
		b.Run(codec.String(), func(b *testing.B) {
			br := startBroker(b, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
			c := br.dial(client.WithCompression(codec))
			ctx := context.Background()
			createTopic(b, c, "bench")
			for range batches {
				if _, err := c.Produce(ctx, "bench", lines...); err != nil {
					b.Fatal(err)
				}
			}
			var buf client.ConsumeBuffer
			b.ReportAllocs()
			off, n := uint64(0), 0
			for b.Loop() {
				msgs, err := c.Consume(ctx, "bench", off, codecBatch, &buf)
				if err != nil {
					b.Fatal(err)
				}
				n += msgs.Len()
				if off = msgs.Next(); off == batches*codecBatch {
					off = 0
				}
			}
			reportCodec(b, n, n*total/len(lines))
		})
	}
}
