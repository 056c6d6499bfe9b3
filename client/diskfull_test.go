package client_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
	"github.com/haraqa/haraqa/vfs"
)

// Promise: a full disk is visible to a producing application while it
// lasts: the idempotent Producer keeps resending in order, ProducerOnError
// hears of the storage error ("no space") while it persists, a Flush that
// gives up names it; once space returns every message is stored once, in
// order.
func TestProducerReportsFullDisk(t *testing.T) {
	fs := vfs.NewMemFS()
	b := startBroker(t, "unix", engine.Options{Dir: "/data", FS: fs, SegmentBytes: 1 << 20}, server.Options{AutoCreateTopics: true})
	c := b.dial(client.WithReconnect(5*time.Millisecond, 20*time.Millisecond))
	ctx := testCtx(t)
	createTopic(t, c, "full")

	var mu sync.Mutex
	var reports []error
	reported := make(chan struct{}) // closed at the first report
	var got ackLog
	p := client.NewProducer(c, "full", client.ProducerLinger(0), client.ProducerMaxMessages(10), client.ProducerMaxInFlight(4),
		client.ProducerOnAck(got.onAck),
		client.ProducerOnError(func(msg []byte, err error) {
			mu.Lock()
			reports = append(reports, err)
			if len(reports) == 1 {
				close(reported)
			}
			mu.Unlock()
		}))
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if err := p.Send(ctx, payload(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(0, 20)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	fs.SetCapacity(1) // the disk is full
	send(20, 60)
	// The Producer reports after the broker refused a batch a few times;
	// wait for that (bounded) rather than for a wall-clock guess, then a
	// Flush that gives up must name the error.
	select {
	case <-reported:
	case <-time.After(30 * time.Second):
		t.Fatal("OnError never heard of the full disk within 30s")
	}
	fctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := p.Flush(fctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrStorage) || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("Flush on a full disk: %v; want the deadline and the storage error naming no space", err)
	}
	mu.Lock()
	n := len(reports)
	for _, r := range reports {
		if !errors.Is(r, client.ErrRetrying) || !errors.Is(r, client.ErrStorage) || !strings.Contains(r.Error(), "no space") {
			t.Errorf("OnError while the disk is full: %v", r)
		}
	}
	mu.Unlock()
	if n == 0 {
		t.Fatal("OnError never heard of the full disk")
	}
	t.Logf("%d OnError reports while the disk was full; Flush: %v", n, err)

	fs.SetCapacity(0) // space is back
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close once space is back: %v", err)
	}
	got.dense(t, 60)
	consumeAll(t, c, "full", 0, 60, 0)
}
