package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

// A Consumer at the end of a topic whose Messages loop is left in every
// way a caller leaves it (a break while a ConsumeNext waits ahead, a
// context that ends mid-poll) goes on in the next Messages call with the
// next message, once, in order: the requests it gave up leave it a read
// buffer to send into (it keeps its ConsumeNext behind each poll at the
// end), and no panic.
func TestConsumerStopsAtEndAndGoesOn(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	var h countOps
	c := b.dial(client.WithHooks(&h))
	prod := b.dial()
	ctx := testCtx(t)
	createTopic(t, prod, "stop")
	if _, err := prod.Produce(ctx, "stop", payload(0)); err != nil {
		t.Fatal(err)
	}
	cs := client.NewConsumer(c, "stop", 0, client.ConsumeWait(10*time.Second))
	next := 0
	check := func(m client.Message, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("at message %d: %v", next, err)
		}
		if m.Offset != uint64(next) || string(m.Value) != string(payload(next)) {
			t.Fatalf("message %d: offset %d, %q", next, m.Offset, m.Value)
		}
		next++
	}
	// Message 0, then 1 (produced once 0 was yielded, so the second read
	// has a ConsumeNext behind it, which waits ahead when 1 is yielded);
	// break there.
	for m, err := range cs.Messages(ctx) {
		check(m, err)
		if next == 2 {
			break
		}
		if _, err := prod.Produce(ctx, "stop", payload(next)); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing to read: the loop's context ends while it long-polls (with
	// a ConsumeNext behind the poll).
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	for m, err := range cs.Messages(short) {
		t.Fatalf("yielded %+v %v with nothing produced", m, err)
	}
	cancel()
	before := h.nexts.Load()
	for round := 0; round < 3; round++ {
		if _, err := prod.Produce(ctx, "stop", payload(next)); err != nil {
			t.Fatal(err)
		}
		for m, err := range cs.Messages(ctx) {
			check(m, err)
			break
		}
	}
	if next != 5 || cs.Offset() != 5 {
		t.Fatalf("yielded up to %d, offset %d; want 5", next, cs.Offset())
	}
	// Each of those reads began at the end: it had a ConsumeNext behind it.
	if n := h.nexts.Load() - before; n != 3 {
		t.Fatalf("%d ConsumeNext written in the last three reads, want 3", n)
	}
}
