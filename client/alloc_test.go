package client_test

import (
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/record"
)

// Allocation bounds per call, measured against a broker in another
// process (so only the client's allocations count): a warm client
// allocates nothing. Under the race detector sync.Pool drops a quarter of
// what it is given, so pooled calls and builders are now and then
// allocated anew: 1 to 2 per call measured, 3 allowed.
const (
	maxProduceBatchAllocs = 0
	maxConsumeAllocs      = 0
	maxProduceAllocs      = 0
	raceSlack             = 3
)

func TestAllocs(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			c := dialProcess(t, startBrokerProcess(t, network))
			ctx := testCtx(t)
			createTopic(t, c, "allocs")
			msgs := make([][]byte, 100)
			for i := range msgs {
				msgs[i] = make([]byte, 100)
			}
			batch, err := record.AppendBatch(nil, msgs...)
			if err != nil {
				t.Fatal(err)
			}
			produceBatch := func() {
				if _, err := c.ProduceBatch(ctx, "allocs", batch); err != nil {
					t.Fatal(err)
				}
			}
			produce := func() {
				if _, err := c.Produce(ctx, "allocs", msgs...); err != nil {
					t.Fatal(err)
				}
			}
			var buf client.ConsumeBuffer
			consume := func() {
				m, err := c.Consume(ctx, "allocs", 150, 100, &buf)
				if err != nil || m.Len() != 100 {
					t.Fatal(m, err)
				}
			}
			consumeWait := func() {
				m, err := c.Consume(ctx, "allocs", 10, 100, &buf, client.ConsumeWait(time.Second))
				if err != nil || m.Len() != 100 {
					t.Fatal(m, err)
				}
			}
			for _, tc := range []struct {
				name string
				f    func()
				max  float64
			}{
				{"ProduceBatch", produceBatch, maxProduceBatchAllocs},
				{"Produce", produce, maxProduceAllocs},
				{"Consume", consume, maxConsumeAllocs},
				{"Consume/wait", consumeWait, maxConsumeAllocs + 1}, // the option closure
			} {
				for range 20 {
					tc.f() // warm the pools, the buffer and the maps
				}
				n := testing.AllocsPerRun(500, tc.f)
				max := tc.max
				if raceEnabled {
					max += raceSlack
				}
				t.Logf("%s: %.2f allocations per call", tc.name, n)
				if n > max {
					t.Errorf("%s: %.2f allocations per call, want <= %v", tc.name, n, max)
				}
			}
		})
	}
}
