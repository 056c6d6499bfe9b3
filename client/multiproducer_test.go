package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

// mval is message seq of a topic in the many-topic tests.
func mval(topic string, seq int) []byte {
	return fmt.Appendf(nil, "%s/%d", topic, seq)
}

// One MultiProducer fed by 16 goroutines stores every message of 100
// topics exactly once and in the order it was sent per topic, while the
// message bytes it holds never exceed its buffer bound. 1,000 messages a
// topic here; TestSlowMultiProducerManyTopics sends 10,000.
func TestMultiProducerManyTopics(t *testing.T) { manyTopics(t, 1000) }

// TestSlowMultiProducerManyTopics is TestMultiProducerManyTopics with
// 10,000 messages a topic (a million in all; about 45 s under -race), run
// with HARAQA_SLOW=1.
func TestSlowMultiProducerManyTopics(t *testing.T) {
	if os.Getenv("HARAQA_SLOW") == "" {
		t.Skip("slow: set HARAQA_SLOW=1")
	}
	manyTopics(t, 10_000)
}

func manyTopics(t *testing.T, n int) {
	const topics, senders, bound = 100, 16, 64 << 10
	b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	names := make([]string, topics)
	for i := range names {
		names[i] = "mt-" + strconv.Itoa(i)
		createTopic(t, c, names[i])
	}
	var badOffsets atomic.Int64
	var checked atomic.Int64
	p := client.NewMultiProducer(c, client.ProducerMaxBytes(8<<10), client.ProducerBufferBytes(bound),
		client.ProducerMaxInFlight(4), client.ProducerOnError(func(msg []byte, err error) { t.Errorf("%q: %v", msg, err) }))
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each topic has one sender, which interleaves its topics.
			var mine []string
			for i := g; i < topics; i += senders {
				mine = append(mine, names[i])
			}
			for seq := range n {
				for _, topic := range mine {
					v := mval(topic, seq)
					var err error
					if seq%97 == 0 {
						want := uint64(seq)
						err = p.SendFunc(ctx, client.Message{Topic: topic, Value: v}, func(_ context.Context, r client.Result) {
							checked.Add(1)
							if r.Err != nil || r.Offset != want || r.Topic != topic {
								badOffsets.Add(1)
							}
						})
					} else {
						err = p.Send(ctx, topic, v)
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if peak := client.ProducerPeak(p); peak > bound || peak == 0 {
		t.Fatalf("buffered up to %d bytes, bound %d", peak, bound)
	}
	if badOffsets.Load() != 0 || checked.Load() == 0 {
		t.Fatalf("%d of %d callbacks had a wrong result", badOffsets.Load(), checked.Load())
	}
	var buf client.ConsumeBuffer
	for _, topic := range names {
		start, end, err := c.Offsets(ctx, topic)
		if err != nil || start != 0 || end != uint64(n) {
			t.Fatalf("%s: [%d, %d) %v, want %d messages", topic, start, end, err, n)
		}
		for off := uint64(0); off < end; {
			msgs, err := c.Consume(ctx, topic, off, 0, &buf)
			if err != nil {
				t.Fatal(err)
			}
			for m := range msgs.All() {
				if !bytes.Equal(m.Value, mval(topic, int(off))) || m.Topic != topic {
					t.Fatalf("%s offset %d: %q", topic, off, m.Value)
				}
				off++
			}
		}
	}
}

// A message that fails — its topic deleted while the producer runs, or
// too large to send — reaches exactly its own callback with its error;
// the other messages, before and after it, are stored and their callbacks
// get their offsets. Flush names the topic and count that failed.
func TestMultiProducerPerMessageFailure(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	createTopic(t, c, "doomed")
	createTopic(t, c, "kept")
	p := client.NewMultiProducer(c, client.ProducerLinger(time.Millisecond))
	type res struct {
		client.Result
		ctxVal any
	}
	var mu sync.Mutex
	results := map[string]res{} // by value
	type key struct{}
	send := func(topic string, v []byte) {
		t.Helper()
		sctx := context.WithValue(ctx, key{}, string(v))
		err := p.SendFunc(sctx, client.Message{Topic: topic, Value: v}, func(cctx context.Context, r client.Result) {
			mu.Lock()
			defer mu.Unlock()
			if _, dup := results[string(v)]; dup {
				t.Errorf("%q: second callback", v)
			}
			results[string(v)] = res{r, cctx.Value(key{})}
		})
		if err != nil && !errors.Is(err, client.ErrMessageTooLarge) {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		send("doomed", mval("doomed", i))
		send("kept", mval("kept", i))
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTopic(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	huge := bytes.Repeat([]byte("x"), 65<<20)
	for i := 50; i < 100; i++ {
		send("doomed", mval("doomed", i))
		send("kept", mval("kept", i))
		if i == 75 {
			send("kept", huge)
		}
	}
	err := p.Flush(ctx)
	var pe *client.ProduceError
	if !errors.As(err, &pe) || !errors.Is(err, client.ErrTopicNotFound) || len(pe.Failures) != 1 ||
		pe.Failures[0].Topic != "doomed" || pe.Failures[0].Messages != 50 {
		t.Fatalf("flush: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(results) != 201 {
		t.Fatalf("%d callbacks, want 201", len(results))
	}
	for i := range 100 {
		for _, topic := range []string{"doomed", "kept"} {
			v := string(mval(topic, i))
			r := results[v]
			if r.ctxVal != v || r.Topic != topic {
				t.Fatalf("%s: callback with context %v, topic %q", v, r.ctxVal, r.Topic)
			}
			switch {
			case topic == "doomed" && i >= 50:
				if !errors.Is(r.Err, client.ErrTopicNotFound) {
					t.Fatalf("%s: %v, want topic not found", v, r.Err)
				}
			case topic == "doomed":
				if r.Err != nil || r.Offset != uint64(i) {
					t.Fatalf("%s: offset %d, %v", v, r.Offset, r.Err)
				}
			default:
				if r.Err != nil || r.Offset != uint64(i) {
					t.Fatalf("%s: offset %d, %v", v, r.Offset, r.Err)
				}
			}
		}
	}
	if r := results[string(huge)]; !errors.Is(r.Err, client.ErrMessageTooLarge) || r.Topic != "kept" {
		t.Fatalf("huge message: %v", r.Err)
	}
	consumeTopic := func(topic string, n int) {
		var buf client.ConsumeBuffer
		msgs, err := c.Consume(ctx, topic, 0, 0, &buf)
		if err != nil || msgs.Len() != n {
			t.Fatalf("%s: %v, %d messages", topic, err, msgs.Len())
		}
		for m := range msgs.All() {
			if !bytes.Equal(m.Value, mval(topic, int(m.Offset))) {
				t.Fatalf("%s offset %d: %q", topic, m.Offset, m.Value)
			}
		}
	}
	consumeTopic("kept", 100)
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
