package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

// ackLog records a Producer's acks.
type ackLog struct {
	mu   sync.Mutex
	acks [][2]uint64 // base, count
}

func (a *ackLog) onAck(base uint64, n int) {
	a.mu.Lock()
	a.acks = append(a.acks, [2]uint64{base, uint64(n)})
	a.mu.Unlock()
}

// dense checks that the acks cover [0, n) in order, without gaps.
func (a *ackLog) dense(t *testing.T, n uint64) int {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var next uint64
	for i, ack := range a.acks {
		if ack[0] != next {
			t.Fatalf("ack %d: base %d, want %d", i, ack[0], next)
		}
		next += ack[1]
	}
	if next != n {
		t.Fatalf("acks cover [0, %d), want [0, %d)", next, n)
	}
	return len(a.acks)
}

func TestProducerBatching(t *testing.T) {
	networks(t, engine.Options{Fsync: engine.FsyncNever}, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		ctx := testCtx(t)
		createTopic(t, c, "prod")
		var acks ackLog
		p := client.NewProducer(c, "prod", client.ProducerMaxMessages(500), client.ProducerMaxBytes(16<<10),
			client.ProducerBufferBytes(64<<10), client.ProducerOnAck(acks.onAck),
			client.ProducerOnError(func(msg []byte, err error) { t.Errorf("%q: %v", msg, err) }))
		const n = 20_000
		for i := range n {
			if err := p.Send(ctx, payload(i)); err != nil {
				t.Fatal(err)
			}
			if i == n/2 {
				if err := p.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				acks.dense(t, n/2+1)
			}
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		batches := acks.dense(t, n)
		if batches < n/500 || batches > n/10 {
			t.Fatalf("%d messages in %d batches", n, batches)
		}
		consumeAll(t, c, "prod", 0, n, 0)
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.Send(ctx, []byte("late")); !errors.Is(err, client.ErrClosed) {
			t.Fatalf("send after close: %v", err)
		}
		if err := p.Close(ctx); !errors.Is(err, client.ErrClosed) {
			t.Fatalf("close twice: %v", err)
		}
	})
}

func TestProducerConcurrentSendAndLinger(t *testing.T) {
	b := startBroker(t, "unix", engine.Options{}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	createTopic(t, c, "conc")
	var acks ackLog
	p := client.NewProducer(c, "conc", client.ProducerLinger(20*time.Millisecond), client.ProducerOnAck(acks.onAck))
	const senders, each = 8, 1000
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				if err := p.Send(ctx, fmt.Appendf(nil, "%d-%d", s, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Linger alone sends the last batch.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, end, _ := c.Offsets(ctx, "conc"); end == senders*each {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("linger did not send the last batch")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	acks.dense(t, senders*each)
	// Each sender's messages keep their order.
	last := make([]int, senders)
	for s := range last {
		last[s] = -1
	}
	var buf client.ConsumeBuffer
	for off := uint64(0); off < senders*each; {
		msgs, err := c.Consume(ctx, "conc", off, 0, &buf)
		if err != nil {
			t.Fatal(err)
		}
		for m := range msgs.All() {
			var s, i int
			fmt.Sscanf(string(m.Value), "%d-%d", &s, &i)
			if i != last[s]+1 {
				t.Fatalf("sender %d: message %d after %d", s, i, last[s])
			}
			last[s] = i
		}
		off = msgs.Next()
	}
}

func TestProducerErrors(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	var mu sync.Mutex
	var failed []string
	p := client.NewProducer(c, "nope", client.ProducerOnError(func(msg []byte, err error) {
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(err, client.ErrTopicNotFound) {
			t.Errorf("%q: %v", msg, err)
		}
		failed = append(failed, string(msg))
	}))
	for i := range 10 {
		if err := p.Send(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("flush: %v", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("second flush reports the failure again: %v", err)
	}
	mu.Lock()
	if len(failed) != 10 || failed[3] != string(payload(3)) {
		t.Fatalf("failed messages: %q", failed)
	}
	mu.Unlock()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The client checks a name's length; the broker checks the rest.
	long := client.NewProducer(c, string(make([]byte, 250)))
	if err := long.Send(ctx, []byte("x")); !errors.Is(err, client.ErrBadTopicName) {
		t.Fatalf("long name: %v", err)
	}
	bad := client.NewProducer(c, "bad/name")
	if err := bad.Send(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := bad.Close(ctx); !errors.Is(err, client.ErrBadTopicName) {
		t.Fatalf("bad name: %v", err)
	}
}

// TestProducerBlocksWhenFull fills the buffer while the broker cannot
// answer (the topic's produce waits) and checks that Send honours ctx.
func TestProducerBlocksWhenFull(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	createTopic(t, c, "full")
	// A stopped broker makes every batch wait for the redial.
	p := client.NewProducer(c, "full", client.ProducerMaxBytes(1<<10), client.ProducerBufferBytes(4<<10), client.ProducerLinger(0))
	b.stop()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	var err error
	for i := 0; err == nil && i < 1000; i++ {
		err = p.Send(short, make([]byte, 100))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send into a full buffer: %v", err)
	}
	// Close gives up with its context; the buffered batches fail.
	short, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := p.Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close: %v", err)
	}
}

func TestConsumerFollows(t *testing.T) {
	networks(t, engine.Options{Fsync: engine.FsyncNever, SegmentBytes: 64 << 10}, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		ctx := testCtx(t)
		createTopic(t, c, "follow")
		const n = 10_000
		go func() {
			p := client.NewProducer(c, "follow", client.ProducerMaxMessages(37))
			for i := range n {
				if err := p.Send(ctx, payload(i)); err != nil {
					t.Error(err)
					return
				}
				if i%1000 == 0 {
					time.Sleep(5 * time.Millisecond) // let the consumer catch up and wait
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Error(err)
			}
		}()
		cs := client.NewConsumer(c, "follow", 0, client.ConsumeWait(5*time.Second), client.ConsumeLimit(250))
		want := uint64(0)
		for m, err := range cs.Messages(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if m.Offset != want || !bytes.Equal(m.Value, payload(int(want))) {
				t.Fatalf("got %d %q, want %d", m.Offset, m.Value, want)
			}
			want++
			if want == n {
				break
			}
		}
		if cs.Offset() != n {
			t.Fatalf("consumer offset %d", cs.Offset())
		}
		// The iterator stops quietly when its context ends.
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		for m, err := range cs.Messages(short) {
			t.Fatalf("after the end: %v %v", m, err)
		}
		// A topic that is not there ends the iteration with the error.
		for _, err := range client.NewConsumer(c, "nope", 0).Messages(ctx) {
			if !errors.Is(err, client.ErrTopicNotFound) {
				t.Fatalf("missing topic: %v", err)
			}
		}
	})
}

func TestWriter(t *testing.T) {
	b := startBroker(t, "unix", engine.Options{}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	createTopic(t, c, "logs")
	p := client.NewProducer(c, "logs")
	defer p.Close(ctx)
	w := client.NewWriter(p)

	l := log.New(w, "app: ", 0)
	l.Printf("started %d workers", 4)
	l.Print("multi\nline")
	h := slog.New(slog.NewJSONHandler(w, nil))
	h.Info("request", "path", "/x", "status", 200)
	// A line in pieces, and two lines in one write.
	for _, piece := range []string{"par", "tial ", "line\nnext", " one\n", "tail without newline"} {
		if _, err := w.Write([]byte(piece)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x\n")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	msgs, err := c.Consume(ctx, "logs", 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range msgs.All() {
		got = append(got, string(m.Value))
	}
	want := []string{"app: started 4 workers", "app: multi", "line", "", "partial line", "next one", "tail without newline"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(got[3]), &rec); err != nil || rec["msg"] != "request" || rec["status"] != 200.0 {
		t.Fatalf("slog record %q: %v", got[3], err)
	}
	for i := range want {
		if i != 3 && got[i] != want[i] {
			t.Fatalf("line %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// TestProducerInFlight runs several batches in flight: every message is
// acked once, the acks come in send order and their ranges tile the topic
// densely, but the broker may append batches in flight together in either
// order (see ProducerMaxInFlight).
func TestProducerInFlight(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	createTopic(t, c, "inflight")
	var acks ackLog
	p := client.NewProducer(c, "inflight", client.ProducerMaxInFlight(4), client.ProducerMaxMessages(100),
		client.ProducerOnAck(acks.onAck))
	const n = 20_000
	for i := range n {
		if err := p.Send(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	acks.mu.Lock()
	ranges := slices.Clone(acks.acks)
	acks.mu.Unlock()
	slices.SortFunc(ranges, func(a, b [2]uint64) int { return int(a[0]) - int(b[0]) })
	next := uint64(0)
	for _, r := range ranges {
		if r[0] != next {
			t.Fatalf("acked ranges leave a gap or overlap at %d", next)
		}
		next += r[1]
	}
	if next != n {
		t.Fatalf("acked %d messages", next)
	}
	seen := make([]bool, n)
	var buf client.ConsumeBuffer
	for off := uint64(0); off < n; {
		msgs, err := c.Consume(ctx, "inflight", off, 0, &buf)
		if err != nil {
			t.Fatal(err)
		}
		for m := range msgs.All() {
			var i int
			fmt.Sscanf(string(m.Value), "message %d", &i)
			if seen[i] {
				t.Fatalf("message %d twice", i)
			}
			seen[i] = true
		}
		off = msgs.Next()
	}
}

func TestCloseFailsCallsInFlight(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	createTopic(t, c, "cl")
	w, err := c.Watch(ctx, "cl")
	if err != nil {
		t.Fatal(err)
	}
	<-w
	polled := make(chan error, 1)
	go func() {
		_, err := c.Consume(ctx, "cl", 0, 1, nil, client.ConsumeWait(20*time.Second))
		polled <- err
	}()
	time.Sleep(100 * time.Millisecond)
	c.Close()
	if err := <-polled; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("poll in flight at close: %v", err)
	}
	var last client.WatchEvent
	for ev := range w {
		last = ev
	}
	if !errors.Is(last.Err, client.ErrClosed) {
		t.Fatalf("watch at close: %+v", last)
	}
}
