package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// The workloads, each run against every system (sub-benchmark per
// system). A run's op is the whole workload; use -benchtime=1x. Numbers
// are reported as custom metrics after the run verified what it read back.

// forEach runs f as a sub-benchmark per system (only systems that run
// every workload unless all), each with a broker of its own at durability t.
func forEach(b *testing.B, t tier, all bool, f func(b *testing.B, br broker)) {
	for _, s := range systems() {
		if !all && !s.every {
			continue
		}
		b.Run(s.name, func(b *testing.B) { f(b, s.start(b, t)) })
	}
}

// stream is a topic written by a produce benchmark and verified, for the
// consume benchmark that follows it on the same broker.
type stream struct {
	topic string
	n     int
}

// BenchmarkW1W2: W1 produces 1,000,000 100-byte messages as fast as
// possible (haraqa: batches of 1,000, 4 in flight on one connection;
// NATS: 4,000 async publishes pending; Redis: 4 pipelines of 1,000 XADDs
// in flight); W2 consumes them back from the start. Relaxed durability.
func BenchmarkW1W2(b *testing.B) {
	sz := size()
	g := newGen(sz.msgSize)
	forEach(b, relaxed, true, func(b *testing.B, br broker) {
		var last stream
		b.Run("W1-produce", func(b *testing.B) {
			last = produceRun(b, br, g, "w1", last, sz.w1Msgs, sz.msgSize)
		})
		b.Run("W2-consume", func(b *testing.B) {
			last = consumeRun(b, br, g, "w1", last, sz.w1Msgs, sz.msgSize)
		})
	})
}

// BenchmarkW3: 2,000 messages of 1 MiB produced (4 in flight) and consumed.
func BenchmarkW3(b *testing.B) {
	sz := size()
	g := newGen(sz.bigSize)
	forEach(b, relaxed, false, func(b *testing.B, br broker) {
		var last stream
		b.Run("produce", func(b *testing.B) {
			last = produceRun(b, br, g, "w3", last, sz.w3Msgs, sz.bigSize)
		})
		b.Run("consume", func(b *testing.B) {
			last = consumeRun(b, br, g, "w3", last, sz.w3Msgs, sz.bigSize)
		})
	})
}

// produceRun times the production of b.N*n messages into a new topic,
// then reads them all back and verifies them. The previous topic is
// deleted first so that the disk holds one run's data.
func produceRun(b *testing.B, br broker, g *gen, prefix string, prev stream, n, size int) stream {
	ctx := workCtx(b)
	s := dial(b, br)
	if prev.topic != "" {
		if err := s.DeleteTopic(ctx, prev.topic); err != nil {
			b.Fatal(err)
		}
	}
	topic := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	if err := s.CreateTopic(ctx, topic); err != nil {
		b.Fatal(err)
	}
	total := b.N * n
	src := &idSource{max: uint64(total)}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if err := s.Produce(ctx, topic, src, size, depth, g); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	b.StopTimer()
	verifyTopic(b, s, g, topic, total, size)
	reportRate(b, total, size, d)
	return stream{topic: topic, n: total}
}

// consumeRun times reading all of prev's messages b.N times, verifying
// each; without prev (its produce benchmark did not run) it first
// produces the messages, untimed.
func consumeRun(b *testing.B, br broker, g *gen, prefix string, prev stream, n, size int) stream {
	ctx := workCtx(b)
	if prev.topic == "" {
		b.StopTimer()
		s := dial(b, br)
		prev = stream{topic: fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()), n: n}
		if err := s.CreateTopic(ctx, prev.topic); err != nil {
			b.Fatal(err)
		}
		if err := s.Produce(ctx, prev.topic, &idSource{max: uint64(n)}, size, depth, g); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	s := dial(b, br)
	b.ReportAllocs()
	b.ResetTimer()
	var d time.Duration
	for range b.N {
		tr, check := verifier(g, size, prev.n)
		start := time.Now()
		if err := s.Read(ctx, prev.topic, prev.n, size, check); err != nil {
			b.Fatal(err)
		}
		d += time.Since(start)
		if err := tr.complete(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRate(b, b.N*prev.n, size, d)
	return prev
}

// verifyTopic checks that topic holds exactly messages 0..n-1, each once
// and intact.
func verifyTopic(b *testing.B, s session, g *gen, topic string, n, size int) {
	b.Helper()
	ctx := workCtx(b)
	if got, err := s.Len(ctx, topic); err != nil || got != n {
		b.Fatalf("topic %s holds %d messages (%v), want %d", topic, got, err, n)
	}
	tr, check := verifier(g, size, n)
	if err := s.Read(ctx, topic, n, size, check); err != nil {
		b.Fatal(err)
	}
	if err := tr.complete(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkW4: 10,000 synchronous single-message produces of 100 bytes,
// one at a time; latency per produce. Relaxed durability.
func BenchmarkW4(b *testing.B) { w4(b, relaxed, "w4") }

// BenchmarkW4D: W4 durable: every produce synced before its ack (haraqa
// fsync=always, NATS sync always, Redis appendfsync always), one producer,
// one produce at a time: the latency of one durable append.
// 2,000 produces (a fifth of W4's): a durable append takes a sync.
func BenchmarkW4D(b *testing.B) { w4(b, durable, "w4d") }

func w4(b *testing.B, t tier, topic string) {
	sz := size()
	g := newGen(sz.msgSize)
	forEach(b, t, false, func(b *testing.B, br broker) {
		ctx := workCtx(b)
		s := dial(b, br)
		if err := s.CreateTopic(ctx, topic); err != nil {
			b.Fatal(err)
		}
		msg := make([]byte, sz.msgSize)
		total := b.N * sz.w4Msgs
		if t == durable {
			total = max(1, total/5)
		}
		for i := range 100 { // warm up connections, pools and the topic
			g.fill(msg, uint64(total+i))
			if err := s.Send(ctx, topic, msg); err != nil {
				b.Fatal(err)
			}
		}
		lat := newLatencies(total)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := range total {
			g.fill(msg, uint64(i))
			t0 := time.Now()
			if err := s.Send(ctx, topic, msg); err != nil {
				b.Fatal(err)
			}
			lat.add(time.Since(t0))
		}
		d := time.Since(start)
		b.StopTimer()
		verifyTopic(b, s, g, topic, total+100, sz.msgSize)
		reportRate(b, total, sz.msgSize, d)
		lat.report(b)
	})
}

// BenchmarkW5: durable produce, fsync before every ack: 8 producers, each
// on its own connection, produce 100-byte messages for 2 seconds with the
// same batching and in-flight bound as W1.
func BenchmarkW5(b *testing.B) {
	sz := size()
	g := newGen(sz.msgSize)
	forEach(b, durable, false, func(b *testing.B, br broker) {
		ctx := workCtx(b)
		topic := "w5"
		sessions := make([]session, w5Producers)
		for i := range sessions {
			sessions[i] = dial(b, br)
		}
		if err := sessions[0].CreateTopic(ctx, topic); err != nil {
			b.Fatal(err)
		}
		var srcs []*idSource
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			round := make([]*idSource, w5Producers)
			deadline := time.Now().Add(sz.w5For)
			for p := range round {
				round[p] = &idSource{max: uint64(sz.w5Max), deadline: deadline}
			}
			err := parallel(ctx, w5Producers, func(ctx context.Context, p int) error {
				return sessions[p].Produce(ctx, topic, round[p].withBase(uint64(len(srcs)+p)<<40), sz.msgSize, depth, g)
			})
			if err != nil {
				b.Fatal(err)
			}
			srcs = append(srcs, round...)
		}
		d := time.Since(start)
		b.StopTimer()
		total := verifyProducers(b, sessions[0], g, topic, srcs, sz.msgSize)
		reportRate(b, total, sz.msgSize, d)
	})
}

// verifyProducers checks that topic holds exactly the messages the
// sources handed out, each once and intact, and returns their number.
func verifyProducers(b *testing.B, s session, g *gen, topic string, srcs []*idSource, size int) int {
	ctx := workCtx(b)
	trs := make([]*tracker, len(srcs))
	total := 0
	for i, src := range srcs {
		trs[i] = newTracker(src.issued())
		total += src.issued()
	}
	if got, err := s.Len(ctx, topic); err != nil || got != total {
		b.Fatalf("topic %s holds %d messages (%v), want %d", topic, got, err, total)
	}
	err := s.Read(ctx, topic, total, size, func(v []byte) error {
		id, err := g.check(v, size, 8)
		if err != nil {
			return err
		}
		p := int(id >> 40)
		if p >= len(trs) {
			return fmt.Errorf("message %#x from no producer", id)
		}
		return trs[p].add(id & (1<<40 - 1))
	})
	if err != nil {
		b.Fatal(err)
	}
	for i, tr := range trs {
		if err := tr.complete(); err != nil {
			b.Fatalf("producer %d: %v", i, err)
		}
	}
	return total
}

// BenchmarkW6: end-to-end latency from a producer to a consumer that
// follows the topic, at 10,000 messages/s (message i is due at i/rate;
// the producer sleeps until the next is due, then sends all that are due,
// without waiting for acks). Each message carries its send time.
func BenchmarkW6(b *testing.B) {
	sz := size()
	g := newGen(sz.msgSize)
	forEach(b, relaxed, false, func(b *testing.B, br broker) {
		ctx := workCtx(b)
		prod, cons := dial(b, br), dial(b, br)
		topic := "w6"
		if err := prod.CreateTopic(ctx, topic); err != nil {
			b.Fatal(err)
		}
		total := b.N * sz.w6Msgs
		lat := newLatencies(total)
		tr := newTracker(total)
		var checkErr error
		fctx, stopFollow := context.WithCancel(ctx)
		defer stopFollow()
		followed := make(chan error, 1)
		go func() {
			followed <- cons.Follow(fctx, topic, func(v []byte) bool {
				now := time.Now()
				id, err := g.check(v, sz.msgSize, 16)
				if err == nil {
					err = tr.add(id)
				}
				if err != nil {
					checkErr = err
					return false
				}
				lat.add(now.Sub(time.Unix(0, int64(binary.LittleEndian.Uint64(v[8:])))))
				return tr.got < total
			})
		}()
		a, err := prod.Async(ctx, topic)
		if err != nil {
			b.Fatal(err)
		}
		msg := make([]byte, sz.msgSize)
		interval := time.Second / time.Duration(sz.w6Rate)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := range total {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				time.Sleep(wait)
			}
			g.fill(msg, uint64(i))
			binary.LittleEndian.PutUint64(msg[8:], uint64(time.Now().UnixNano()))
			if err := a.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
		if err := a.Close(ctx); err != nil {
			b.Fatal(err)
		}
		sent := time.Since(start)
		select {
		case err := <-followed:
			if err != nil || checkErr != nil {
				b.Fatalf("follow: %v %v", err, checkErr)
			}
		case <-time.After(30 * time.Second):
			stopFollow()
			<-followed
			b.Fatalf("follow: %d of %d messages after 30s", tr.got, total)
		}
		b.StopTimer()
		if err := tr.complete(); err != nil {
			b.Fatal(err)
		}
		reportRate(b, total, sz.msgSize, sent)
		lat.report(b)
	})
}
