package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkTopics: produce throughput with 1, 100, 1,000 and 10,000 topics
// written round-robin — 100-byte messages in batches of 100 per topic, 16
// batches in flight — and the broker's resident memory, haraqa next to
// NATS JetStream (one stream per topic) and Redis (one stream per key),
// relaxed durability as W1. Topics are created before the clock starts.
// Every topic's message count is checked afterwards, and the first and
// the last topic are read back whole (content, ids, no duplicates).
func BenchmarkTopics(b *testing.B) {
	counts, total := []int{1, 100, 1000, 10000}, 2_000_000
	if testing.Short() {
		counts, total = []int{1, 100}, 20_000
	}
	for _, n := range counts {
		for _, sys := range topicSystems() {
			b.Run(fmt.Sprintf("topics=%d/%s", n, sys.name), func(b *testing.B) {
				br := sys.start(b, relaxed)
				runTopics(b, br, n, total)
			})
		}
	}
}

const (
	topicsSize  = 100
	topicsBatch = 100
	topicsDepth = 16
)

func topicSystems() []system {
	var out []system
	for _, s := range systems() {
		switch s.name {
		case "haraqa-tcp", "haraqa-proc-tcp", "nats", "redis":
			out = append(out, s)
		}
	}
	return out
}

// multiProducer writes batches round-robin over topics: batch k (ids
// [k*batch, (k+1)*batch)) goes to topics[k % len(topics)].
type multiProducer interface {
	ProduceTopics(ctx context.Context, topics []string, src *idSource, size, batch, depth int, g *gen) error
}

func topicOf(id uint64, batch, n int) int { return int(id/uint64(batch)) % n }

func runTopics(b *testing.B, br broker, n, total int) {
	ctx := workCtx(b)
	g := newGen(topicsSize)
	topics := make([]string, n)
	for i := range topics {
		topics[i] = "t" + strconv.Itoa(i)
	}
	// Create the topics (untimed), 16 sessions at once.
	sessions := make([]session, 16)
	for i := range sessions {
		sessions[i] = dial(b, br)
	}
	var next atomic.Int64
	if err := parallel(ctx, len(sessions), func(ctx context.Context, w int) error {
		for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
			if err := sessions[w].CreateTopic(ctx, topics[i]); err != nil {
				return fmt.Errorf("create %s: %w", topics[i], err)
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	mp, ok := sessions[0].(multiProducer)
	if !ok {
		b.Fatalf("%T cannot produce to many topics", sessions[0])
	}
	pid := os.Getpid()
	if p, ok := br.(interface{ PID() int }); ok && p.PID() != 0 {
		pid = p.PID()
	}
	rss0 := rssOf(pid)
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak.Store(max(peak.Load(), rssOf(pid)))
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	src := &idSource{max: uint64(total)}
	b.ResetTimer()
	start := time.Now()
	err := mp.ProduceTopics(ctx, topics, src, topicsSize, topicsBatch, topicsDepth, g)
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	<-sampled
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "rss-MB")
	b.ReportMetric(float64(rss0)/(1<<20), "rss0-MB")
	if pid == os.Getpid() {
		b.ReportMetric(1, "rss-in-bench-process")
	}
	// Every topic holds its share; the first and the last are read whole.
	per := make([]int, n)
	for id := 0; id < total; id += topicsBatch {
		per[topicOf(uint64(id), topicsBatch, n)] += min(topicsBatch, total-id)
	}
	next.Store(0)
	if err := parallel(ctx, len(sessions), func(ctx context.Context, w int) error {
		for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
			got, err := sessions[w].Len(ctx, topics[i])
			if err != nil {
				return fmt.Errorf("len %s: %w", topics[i], err)
			}
			if got != per[i] {
				return fmt.Errorf("%s holds %d messages, %d were acknowledged", topics[i], got, per[i])
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for _, i := range []int{0, n - 1} {
		seen := map[uint64]bool{}
		if err := sessions[0].Read(ctx, topics[i], per[i], topicsSize, func(v []byte) error {
			id, err := g.check(v, topicsSize, 8)
			if err != nil {
				return err
			}
			if seen[id] || topicOf(id, topicsBatch, n) != i {
				return fmt.Errorf("%s: message %d repeated or not this topic's", topics[i], id)
			}
			seen[id] = true
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// rssOf returns the resident set of process pid in bytes (0 if unknown).
func rssOf(pid int) int64 {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (h *haraqaBroker) PID() int { return h.pid }
func (r *redisBroker) PID() int  { return r.pid }

// ProduceTopics: depth goroutines share the connection, each producing
// the next batch to its topic with Client.Produce and waiting for the ack.
func (s *haraqaSession) ProduceTopics(ctx context.Context, topics []string, src *idSource, size, batch, depth int, g *gen) error {
	return parallel(ctx, depth, func(ctx context.Context, _ int) error {
		slab := make([]byte, batch*size)
		msgs := make([][]byte, batch)
		for i := range msgs {
			msgs[i] = slab[i*size : (i+1)*size]
		}
		for {
			first, k := src.take(batch)
			if k == 0 {
				return nil
			}
			for i := range k {
				g.fill(msgs[i], first+uint64(i))
			}
			topic := topics[topicOf(first, batch, len(topics))]
			if _, err := s.c.Produce(ctx, topic, msgs[:k]...); err != nil {
				return fmt.Errorf("haraqa produce to %s: %w", topic, err)
			}
		}
	})
}

// ProduceTopics: depth goroutines, each sending the next batch to its key
// as one pipeline of XADDs.
func (s *redisSession) ProduceTopics(ctx context.Context, topics []string, src *idSource, size, batch, depth int, g *gen) error {
	return parallel(ctx, depth, func(ctx context.Context, _ int) error {
		slab := make([]byte, batch*size)
		for {
			first, k := src.take(batch)
			if k == 0 {
				return nil
			}
			topic := topics[topicOf(first, batch, len(topics))]
			pipe := s.rdb.Pipeline()
			for i := range k {
				m := slab[i*size : (i+1)*size]
				g.fill(m, first+uint64(i))
				pipe.XAdd(ctx, xadd(topic, m))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("redis xadd pipeline to %s: %w", topic, err)
			}
		}
	})
}

// ProduceTopics publishes asynchronously to each batch's stream subject
// with at most depth*batch publishes awaiting their ack.
func (s *natsSession) ProduceTopics(ctx context.Context, topics []string, src *idSource, size, batch, depth int, g *gen) error {
	var fail firstErr
	js, err := jetstream.New(s.nc,
		jetstream.WithPublishAsyncMaxPending(depth*batch),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { fail.set(err) }))
	if err != nil {
		return err
	}
	stall := jetstream.WithStallWait(time.Minute)
	for {
		first, k := src.take(batch)
		if k == 0 {
			break
		}
		topic := topics[topicOf(first, batch, len(topics))]
		for i := range k {
			data := make([]byte, size)
			g.fill(data, first+uint64(i))
			if _, err := js.PublishAsync(topic, data, stall); err != nil {
				return fmt.Errorf("nats publish: %w", err)
			}
		}
		if err := fail.get(); err != nil {
			return fmt.Errorf("nats publish: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	return fail.get()
}
