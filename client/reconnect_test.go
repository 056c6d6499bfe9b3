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

func TestReconnectAfterRestart(t *testing.T) {
	b := startBroker(t, "unix", engine.Options{}, server.Options{})
	c := b.dial(client.WithReconnect(10*time.Millisecond, 200*time.Millisecond))
	ctx := testCtx(t)
	createTopic(t, c, "r")
	produceN(t, c, "r", 100, 10)

	// A long poll in flight when the broker goes away either fails,
	// retriably, or (when the closing broker got to answer it first) comes
	// back empty; it never hangs and never returns data that is not there.
	polled := make(chan error, 1)
	got := make(chan int, 1)
	go func() {
		msgs, err := c.Consume(ctx, "r", 100, 1, nil, client.ConsumeWait(20*time.Second))
		n := 0
		if err == nil {
			n = msgs.Len()
		}
		got <- n
		polled <- err
	}()
	time.Sleep(100 * time.Millisecond)
	b.restart() // same socket path, same data directory
	n, err := <-got, <-polled
	if err == nil && n != 0 {
		t.Fatalf("poll in flight returned %d messages from an empty range", n)
	}
	if err != nil && (!errors.Is(err, client.ErrDisconnected) || !client.IsRetriable(err)) {
		t.Fatalf("poll in flight: %v", err)
	}

	// The next call redials and succeeds.
	start, end, err := c.Offsets(ctx, "r")
	if err != nil || start != 0 || end != 100 {
		t.Fatalf("after restart: [%d, %d), %v", start, end, err)
	}
	off, err := c.Produce(ctx, "r", payload(100))
	if err != nil || off != 100 {
		t.Fatalf("produce after restart: %d, %v", off, err)
	}
	consumeAll(t, c, "r", 0, 101, 0)
}

func TestReconnectWhileDown(t *testing.T) {
	b := startBroker(t, "unix", engine.Options{}, server.Options{})
	c := b.dial(client.WithReconnect(20*time.Millisecond, 100*time.Millisecond))
	ctx := testCtx(t)
	createTopic(t, c, "d")
	var acks ackLog
	p := client.NewProducer(c, "d", client.ProducerOnAck(acks.onAck))
	w, err := c.Watch(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	nextEvent(t, w, "d", func(ev client.WatchEvent) bool { return ev.End == 0 })
	b.stop()

	// While the broker is down, calls fail fast and retriably.
	for range 3 {
		_, _, err := c.Offsets(ctx, "d")
		if !errors.Is(err, client.ErrDisconnected) || !client.IsRetriable(err) {
			t.Fatalf("broker down: %v", err)
		}
	}
	// A Producer keeps its batches until the broker is back.
	for i := range 50 {
		if err := p.Send(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(150 * time.Millisecond)
	b.start()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	acks.dense(t, 50)
	consumeAll(t, c, "d", 0, 50, 0)
	// The watch registered again on its own.
	nextEvent(t, w, "d", func(ev client.WatchEvent) bool { return ev.End == 50 })
}

func TestConsumerAcrossRestart(t *testing.T) {
	b := startBroker(t, "unix", engine.Options{}, server.Options{})
	c := b.dial(client.WithReconnect(10*time.Millisecond, 100*time.Millisecond))
	ctx := testCtx(t)
	createTopic(t, c, "cr")
	produceN(t, c, "cr", 10, 10)
	cs := client.NewConsumer(c, "cr", 0, client.ConsumeWait(5*time.Second))
	want, errs := uint64(0), 0
	// The consumer may read message 10 before its producer has the
	// acknowledgement: the test waits for it, so that closing the client
	// at the end never fails a produce still in flight.
	produced := make(chan error, 1)
	for m, err := range cs.Messages(ctx) {
		if err != nil {
			if !client.IsRetriable(err) {
				t.Fatal(err)
			}
			errs++
			continue
		}
		if m.Offset != want || string(m.Value) != string(payload(int(want))) {
			t.Fatalf("got %d %q, want %d", m.Offset, m.Value, want)
		}
		want++
		if want == 10 {
			go func() {
				b.restart()
				// A produce sent on the old connection before the client
				// noticed it dropped fails with ErrDisconnected (the
				// documented retriable error); the next call redials.
				_, err := c.Produce(ctx, "cr", payload(10))
				for client.IsRetriable(err) && ctx.Err() == nil {
					_, err = c.Produce(ctx, "cr", payload(10))
				}
				produced <- err
			}()
		}
		if want == 11 {
			break
		}
	}
	if want != 11 {
		select {
		case err := <-produced:
			t.Fatalf("consumer ended at %d, want 11 (produce: %v, errs %d)", want, err, errs)
		default:
			t.Fatalf("consumer ended at %d, want 11 (produce in flight, errs %d)", want, errs)
		}
	}
	if err := <-produced; err != nil {
		t.Fatalf("produce after the restart: %v", err)
	}
	if errs == 0 {
		t.Fatal("the restart went unnoticed")
	}
}

func TestReconnectOff(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	c := b.dial(client.WithReconnect(-1, 0))
	ctx := testCtx(t)
	createTopic(t, c, "off")
	b.restart()
	for range 3 {
		if _, _, err := c.Offsets(ctx, "off"); !errors.Is(err, client.ErrDisconnected) {
			t.Fatalf("reconnect off: %v", err)
		}
	}
	w, err := c.Watch(ctx, "off") // a watch dials its own connection
	if err != nil {
		t.Fatal(err)
	}
	<-w
	b.stop()
	select {
	case ev := <-w:
		if !errors.Is(ev.Err, client.ErrDisconnected) {
			t.Fatalf("watch without reconnect: %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not end")
	}
	if _, ok := <-w; ok {
		t.Fatal("watch channel still open")
	}
	c.Close()
	if _, _, err := c.Offsets(context.Background(), "off"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
}

// TestWatchOutlivesIdleTimeout: a watch connection sends nothing after its
// request, so the broker's IdleTimeout closes it; the watch registers again
// and goes on.
func TestWatchOutlivesIdleTimeout(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{IdleTimeout: 200 * time.Millisecond})
	c := b.dial(client.WithReconnect(10*time.Millisecond, 50*time.Millisecond))
	ctx := testCtx(t)
	createTopic(t, c, "idle")
	w, err := c.Watch(ctx, "idle")
	if err != nil {
		t.Fatal(err)
	}
	nextEvent(t, w, "idle", func(ev client.WatchEvent) bool { return ev.End == 0 })
	time.Sleep(600 * time.Millisecond) // several idle timeouts
	// The Client's own connection idled out too: the next call redials
	// (a call racing the broker's close may fail, retriably).
	for range 3 {
		if _, err = c.Produce(ctx, "idle", []byte("x")); err == nil || !client.IsRetriable(err) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	nextEvent(t, w, "idle", func(ev client.WatchEvent) bool { return ev.End >= 1 })
}
