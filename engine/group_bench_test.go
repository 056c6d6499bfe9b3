package engine

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkGroupFetchAck measures messages consumed and acked through a
// group at the engine (on the OS file system, fsync=always: every ack is
// synced before it returns), 1000 messages per fetch, with 1 and 4
// members. One op is one message.
func BenchmarkGroupFetchAck(b *testing.B) {
	for _, members := range []int{1, 4} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			e := openEngine(b, osOpts(b))
			mustCreate(b, e, "t")
			fill(b, e, "t", b.N, 4096)
			mustGroup(b, e, "t", "g", GroupConfig{})
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range members {
				m := mustJoin(b, e, "t", "g")
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						res, err := e.GroupFetch(bg, "t", "g", m, 1000, 0)
						if err != nil {
							b.Error(err)
							return
						}
						if len(res.Leases) == 0 {
							return
						}
						m.Epoch = res.Epoch
						if err := e.GroupAck(bg, "t", "g", m, leaseRanges(res)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			start := time.Now()
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			if got := mustDescribe(b, e, "t", "g").Committed; got != uint64(b.N) {
				b.Fatalf("committed %d of %d", got, b.N)
			}
		})
	}
}
