package client_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/server"
)

type consumedHook struct{}

func (consumedHook) OnMessagesConsumed(string, *client.Messages, time.Duration) {}

// A Consumer following a topic while it is written (plain, compressed and
// extended batches of several messages) yields every message once, in
// order, whatever cuts its reads short (a message Limit, MaxBytes) and
// however its Messages loops end (a break after some messages, a context
// that ends mid-poll): the ConsumeNext requests it keeps behind its polls
// at the end never make it skip or repeat one. Seeded; the seed is logged.
func TestConsumerChainRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for _, tc := range []struct {
		name    string
		indexed bool // a consumed hook: responses indexed whole, not walked
		budget  bool // a 1 KiB frame limit: reads cut short by the decompression budget
	}{{"walk", false, false}, {"indexed", true, false}, {"budget", false, true}, {"budget-indexed", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			b := startBroker(t, "tcp", engine.Options{}, server.Options{})
			var h countOps
			opts := []client.Option{client.WithHooks(&h)}
			if tc.indexed {
				opts = append(opts, client.WithHooks(consumedHook{}))
			}
			if tc.budget {
				opts = append(opts, client.WithMaxBody(1<<10))
			}
			c := b.dial(opts...)
			plain, zipped := b.dial(), b.dial(client.WithCompression(record.CodecS2))
			ctx := testCtx(t)
			createTopic(t, plain, "r")
			const n = 400
			var wg sync.WaitGroup
			wg.Add(1)
			prng := rand.New(rand.NewPCG(seed, 2))
			go func() {
				defer wg.Done()
				for i := 0; i < n; {
					k := min(1+prng.IntN(6), n-i)
					var err error
					switch prng.IntN(3) {
					case 0:
						msgs := make([][]byte, k)
						for j := range msgs {
							msgs[j] = payload(i + j)
						}
						_, err = plain.Produce(ctx, "r", msgs...)
					case 1:
						msgs := make([][]byte, k)
						for j := range msgs {
							msgs[j] = payload(i + j)
						}
						_, err = zipped.Produce(ctx, "r", msgs...)
					default:
						msgs := make([]client.Message, k)
						for j := range msgs {
							msgs[j] = client.Message{Key: []byte("k"), Value: payload(i + j)}
						}
						_, err = plain.ProduceMessages(ctx, "r", msgs...)
					}
					if err != nil {
						t.Error(err)
						return
					}
					i += k
					if prng.IntN(4) == 0 {
						time.Sleep(time.Duration(prng.IntN(3000)) * time.Microsecond)
					}
				}
			}()
			copts := []client.ConsumeOption{client.ConsumeWait(5 * time.Second)}
			if l := rng.IntN(4); l > 0 {
				copts = append(copts, client.ConsumeLimit(l))
			}
			switch {
			case tc.budget:
				copts = append(copts, client.ConsumeMaxBytes(900))
			case rng.IntN(2) == 0:
				copts = append(copts, client.ConsumeMaxBytes(1+rng.IntN(300)))
			}
			cs := client.NewConsumer(c, "r", 0, copts...)
			next := 0
			for loops := 0; next < n && loops < 10_000 && ctx.Err() == nil && !t.Failed(); loops++ {
				lctx, cancel := ctx, context.CancelFunc(func() {})
				if rng.IntN(3) == 0 {
					lctx, cancel = context.WithTimeout(ctx, time.Duration(1+rng.IntN(20))*time.Millisecond)
				}
				stopAfter := 1 + rng.IntN(12)
				got := 0
				for m, err := range cs.Messages(lctx) {
					if err != nil {
						t.Fatalf("at message %d: %v", next, err)
					}
					if m.Offset != uint64(next) || string(m.Value) != string(payload(next)) {
						t.Fatalf("want message %d, got offset %d %q", next, m.Offset, m.Value)
					}
					next++
					if got++; got == stopAfter || next == n {
						break
					}
				}
				cancel()
			}
			wg.Wait()
			if next != n {
				t.Fatalf("yielded %d of %d messages", next, n)
			}
			t.Logf("%d Consume and %d ConsumeNext written", h.consumes.Load(), h.nexts.Load())
		})
	}
}
