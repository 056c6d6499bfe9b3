package engine

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/haraqa/haraqa/record"
)

const (
	benchBatchMsgs = 1000
	benchMsgBytes  = 100
)

func reportMsgsPerSec(b *testing.B, msgs int64) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(msgs)/s, "msgs/s")
	}
}

// BenchmarkAppend appends batches of 1,000 100-byte messages to one topic
// on real files, with 1 or 8 concurrent appenders.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name      string
		policy    FsyncPolicy
		appenders int
	}{
		{"fsync=never/appenders=1", FsyncNever, 1},
		{"fsync=always/appenders=1", FsyncAlways, 1},
		{"fsync=always/appenders=8", FsyncAlways, 8},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := Options{Dir: b.TempDir(), Fsync: bc.policy, SegmentBytes: 256 << 20,
				Logger: (&logRecorder{}).logger()}
			e, err := Open(opts)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			if err := e.CreateTopic("t"); err != nil {
				b.Fatal(err)
			}
			batch := batchOf(b, genMsgs(0, benchBatchMsgs, benchMsgBytes)...)
			batches := make([][]byte, bc.appenders) // Append stamps its batch: one each
			for i := range batches {
				batches[i] = bytes.Clone(batch)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(batch)))
			b.ResetTimer()
			var ops atomic.Int64
			var wg sync.WaitGroup
			for _, mine := range batches {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ops.Add(1) <= int64(b.N) {
						if _, err := e.Append(ctx, "t", mine); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			reportMsgsPerSec(b, int64(b.N)*benchBatchMsgs)
		})
	}
}

// BenchmarkReadMmap reads a 20 MB topic from its mapping in 1 MiB reads and
// walks every message of every batch (record.Scanner + record.Messages),
// with and without the engine's read verification.
func BenchmarkReadMmap(b *testing.B) {
	opts := Options{Dir: b.TempDir(), Fsync: FsyncNever, SegmentBytes: 8 << 20,
		Logger: (&logRecorder{}).logger()}
	e, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	if err := e.CreateTopic("t"); err != nil {
		b.Fatal(err)
	}
	batch := batchOf(b, genMsgs(0, benchBatchMsgs, benchMsgBytes)...)
	const batches = 200
	for range batches {
		if _, err := e.Append(context.Background(), "t", batch); err != nil {
			b.Fatal(err)
		}
	}
	end := uint64(batches * benchBatchMsgs)
	for _, verify := range []bool{true, false} {
		name := "verify=on"
		if !verify {
			name = "verify=off"
		}
		b.Run(name, func(b *testing.B) {
			e.opts.SkipReadVerify = !verify
			defer func() { e.opts.SkipReadVerify = false }()
			var res ReadResult
			defer res.Release()
			b.ReportAllocs()
			b.SetBytes(int64(batches * len(batch)))
			var msgs, sum int64
			for b.Loop() {
				for off := uint64(0); off < end; {
					if err := e.Read("t", off, end-off, 1<<20, &res); err != nil {
						b.Fatal(err)
					}
					for _, c := range res.Chunks {
						sc := record.NewScanner(c.Data())
						for sc.Next() {
							it := record.Messages(sc.Batch(), sc.Header())
							for m, ok := it.Next(); ok; m, ok = it.Next() {
								msgs++
								sum += int64(len(m))
							}
						}
					}
					off = res.Next()
					res.Release()
				}
			}
			if sum != msgs*benchMsgBytes {
				b.Fatalf("%d messages of %d bytes", msgs, sum)
			}
			reportMsgsPerSec(b, msgs)
		})
	}
}
