package server

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
)

// BenchmarkProduceLatency measures a synchronous single-message produce
// round trip over loopback TCP (one request in flight), with the engine
// syncing never and always: p50 and p99 in µs as custom metrics.
func BenchmarkProduceLatency(b *testing.B) {
	for _, policy := range []engine.FsyncPolicy{engine.FsyncNever, engine.FsyncAlways} {
		b.Run("fsync="+policy.String(), func(b *testing.B) {
			_, p := benchServer(b, "tcp", ConsumeWritev, engine.Options{Fsync: policy})
			batch := batchOf(b, string(bytes.Repeat([]byte{'m'}, benchMsgSize)))
			p.mustProduce(b, "lat", bytes.Clone(batch)) // creates the topic
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				p.mustProduce(b, "lat", bytes.Clone(batch))
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			us := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e3 }
			b.ReportMetric(us(0.50), "p50-µs")
			b.ReportMetric(us(0.99), "p99-µs")
		})
	}
}
