package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

// A Consumer at the end of a topic whose Messages loops are left in every
// way a caller leaves them (a break while a ConsumeNext waits ahead, a
// context that ends mid-poll with a ConsumeNext behind the poll) goes on
// in the next Messages loop with the next message, once, in order: the
// requests it gave up leave it a read buffer to send into (it keeps its
// ConsumeNext behind each poll at the end), and no panic.
func TestConsumerStopsAtEndAndGoesOn(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	var h countOps
	c := b.dial(client.WithHooks(&h))
	prod := b.dial()
	ctx := testCtx(t)
	createTopic(t, prod, "stop")
	next := 0
	produce := func() {
		t.Helper()
		if _, err := prod.Produce(ctx, "stop", payload(next)); err != nil {
			t.Fatal(err)
		}
	}
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
	cs := client.NewConsumer(c, "stop", 0, client.ConsumeWait(10*time.Second))
	// twoThenBreak yields two messages, the second produced once the first
	// was yielded: its read has a ConsumeNext behind it, which waits ahead
	// when the loop breaks.
	twoThenBreak := func() {
		t.Helper()
		produce()
		stop := next + 2
		for m, err := range cs.Messages(ctx) {
			check(m, err)
			if next == stop {
				break
			}
			produce()
		}
		if next != stop {
			t.Fatalf("yielded up to %d, want %d", next, stop)
		}
	}
	twoThenBreak()
	// One message, then the loop's context ends while it long-polls with
	// a ConsumeNext behind the poll.
	produce()
	short, cancel := context.WithCancel(ctx)
	for m, err := range cs.Messages(short) {
		check(m, err)
		time.AfterFunc(100*time.Millisecond, cancel)
	}
	cancel()
	if next != 3 {
		t.Fatalf("yielded up to %d, want 3", next)
	}
	before := h.nexts.Load()
	for range 3 {
		twoThenBreak()
	}
	if next != 9 || cs.Offset() != 9 {
		t.Fatalf("yielded up to %d, offset %d; want 9", next, cs.Offset())
	}
	// The second read of each of those loops began at the end: it had a
	// ConsumeNext behind it.
	if n := h.nexts.Load() - before; n != 3 {
		t.Fatalf("%d ConsumeNext written in the last three loops, want 3", n)
	}
}

// A Consumer at the end of a topic whose Messages loops end before any
// answer (their context ends mid-poll) leaves one request per loop
// waiting at the broker, its long poll, as a Consumer without ConsumeNext
// does, not a ConsumeNext behind it too: those hold the connection's
// in-flight slots until their wait ends, and with the slots taken the
// broker reads nothing more on the connection (here a produce of the
// same Client, which must go through after three such loops with four
// slots).
func TestConsumerLoopsEndedMidPollHoldOneSlotEach(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{MaxInFlight: 4})
	var h countOps
	c := b.dial(client.WithHooks(&h))
	ctx := testCtx(t)
	createTopic(t, c, "held")
	if _, err := c.Produce(ctx, "held", payload(0)); err != nil {
		t.Fatal(err)
	}
	cs := client.NewConsumer(c, "held", 0, client.ConsumeWait(time.Minute))
	for m, err := range cs.Messages(ctx) {
		if err != nil || m.Offset != 0 {
			t.Fatalf("%+v %v", m, err)
		}
		break
	}
	for range 3 {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		for m, err := range cs.Messages(short) {
			t.Fatalf("yielded %+v %v with nothing produced", m, err)
		}
		cancel()
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Produce(pctx, "held", payload(1)); err != nil {
		t.Fatalf("produce after three loops ended mid-poll (%d ConsumeNext written): %v", h.nexts.Load(), err)
	}
	for m, err := range cs.Messages(ctx) {
		if err != nil || m.Offset != 1 || string(m.Value) != string(payload(1)) {
			t.Fatalf("%+v %v", m, err)
		}
		break
	}
}
