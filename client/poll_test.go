package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

func TestLongPoll(t *testing.T) {
	networks(t, engine.Options{}, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		ctx := testCtx(t)
		createTopic(t, c, "lp")
		// Woken by the data, the poll returns long before its wait; the
		// wait is long so that a loaded machine cannot blur the two.
		const maxWait = 30 * time.Second
		produced := make(chan time.Time, 1)
		// The clock starts before the producing goroutine: however the
		// two are scheduled, the produce comes 200 ms after start or later.
		start := time.Now()
		go func() {
			time.Sleep(200 * time.Millisecond)
			// The same Client: the parked poll does not hold up other calls.
			produced <- time.Now()
			if _, err := c.Produce(ctx, "lp", []byte("late")); err != nil {
				t.Error(err)
			}
		}()
		var buf client.ConsumeBuffer
		msgs, err := c.Consume(ctx, "lp", 0, 10, &buf, client.ConsumeWait(maxWait))
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if msgs.Len() != 1 || string(msgs.At(0).Value) != "late" || msgs.Next() != 1 {
			t.Fatalf("got %d messages, next %d", msgs.Len(), msgs.Next())
		}
		at := <-produced
		if took < 200*time.Millisecond || took > maxWait/3 {
			t.Fatalf("long poll returned after %v; data was produced after %v", took, at.Sub(start))
		}
		t.Logf("returned %v after the produce started", time.Since(at)-time.Since(start)+took)

		// An expired poll returns no messages and the same offset.
		start = time.Now()
		msgs, err = c.Consume(ctx, "lp", 1, 10, &buf, client.ConsumeWait(300*time.Millisecond))
		if err != nil || msgs.Len() != 0 || msgs.Next() != 1 || time.Since(start) < 250*time.Millisecond {
			t.Fatalf("expired poll: %v after %v", err, time.Since(start))
		}
	})
}

func TestLongPollCancel(t *testing.T) {
	networks(t, engine.Options{}, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		createTopic(t, c, "cancel")
		var buf client.ConsumeBuffer
		for _, tc := range []struct {
			name string
			ctx  func() (context.Context, context.CancelFunc)
			want error
		}{
			{"cancel", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx, cancel
			}, context.Canceled},
			{"deadline", func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			}, context.DeadlineExceeded},
		} {
			ctx, cancel := tc.ctx()
			start := time.Now()
			_, err := c.Consume(ctx, "cancel", 0, 10, &buf, client.ConsumeWait(20*time.Second))
			cancel()
			if !errors.Is(err, tc.want) || client.IsRetriable(err) || time.Since(start) > 5*time.Second {
				t.Fatalf("%s: %v after %v", tc.name, err, time.Since(start))
			}
		}
		// The broker still holds both polls: data wakes them and their
		// late responses must be dropped, not written into buf.
		if _, err := c.Produce(testCtx(t), "cancel", []byte("a"), []byte("b")); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			msgs, err := c.Consume(testCtx(t), "cancel", 1, 10, &buf)
			if err != nil || msgs.Len() != 1 || string(msgs.At(0).Value) != "b" {
				t.Fatalf("after cancelled polls: %v", err)
			}
		}
	})
}

// nextEvent returns the next event of ch for topic that satisfies ok,
// skipping others (events coalesce, so intermediate ones may be missing).
func nextEvent(t *testing.T, ch <-chan client.WatchEvent, topic string, ok func(client.WatchEvent) bool) client.WatchEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("watch ended waiting for %s", topic)
			}
			if ev.Err != nil {
				t.Fatalf("watch failed: %v", ev.Err)
			}
			if ev.Topic == topic && ok(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event for %s", topic)
		}
	}
}

func TestWatch(t *testing.T) {
	eopts := engine.Options{SegmentBytes: 64 << 10, SegmentEntries: 2}
	networks(t, eopts, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		ctx := testCtx(t)
		if _, err := c.Watch(ctx, "missing"); !errors.Is(err, client.ErrTopicNotFound) {
			t.Fatalf("watch a missing topic: %v", err)
		}
		createTopic(t, c, "w1")
		createTopic(t, c, "w2")
		produceN(t, c, "w2", 10, 10)
		wctx, stop := context.WithCancel(ctx)
		ch, err := c.Watch(wctx, "w1", "w2")
		if err != nil {
			t.Fatal(err)
		}
		any := func(client.WatchEvent) bool { return true }
		first := map[string]client.WatchEvent{}
		for len(first) < 2 {
			ev := <-ch
			first[ev.Topic] = ev
		}
		if ev := first["w1"]; ev.Start != 0 || ev.End != 0 {
			t.Fatalf("first w1 event %+v", ev)
		}
		if ev := first["w2"]; ev.Start != 0 || ev.End != 10 {
			t.Fatalf("first w2 event %+v", ev)
		}
		produceN(t, c, "w1", 30, 3)
		nextEvent(t, ch, "w1", func(ev client.WatchEvent) bool { return ev.End == 30 })
		start, err := c.TruncateBefore(ctx, "w1", 20)
		if err != nil || start == 0 {
			t.Fatalf("truncate: %d, %v", start, err)
		}
		nextEvent(t, ch, "w1", func(ev client.WatchEvent) bool { return ev.Start == start && ev.End == 30 })

		stop()
		for range ch { // drains, then closes
		}

		// Deleting a watched topic ends the watch with the broker's error.
		ch, err = c.Watch(ctx, "w2")
		if err != nil {
			t.Fatal(err)
		}
		nextEvent(t, ch, "w2", any)
		if err := c.DeleteTopic(ctx, "w2"); err != nil {
			t.Fatal(err)
		}
		var last client.WatchEvent
		for ev := range ch {
			last = ev
		}
		if !errors.Is(last.Err, client.ErrTopicNotFound) {
			t.Fatalf("last event after delete: %+v", last)
		}
	})
}
