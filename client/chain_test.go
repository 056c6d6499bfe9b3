package client_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/server"
)

// countOps counts the Consume and ConsumeNext requests written.
type countOps struct{ consumes, nexts atomic.Int64 }

func (h *countOps) OnRequestWritten(op client.Opcode, _ int, err error) {
	switch {
	case err != nil:
	case op == netproto.OpConsume:
		h.consumes.Add(1)
	case op == netproto.OpConsumeNext:
		h.nexts.Add(1)
	}
}

// A Consumer that has caught up keeps a ConsumeNext behind the long poll
// it waits for, so the broker holds a poll for the next message while the
// answer to this one travels and is yielded. Here each message is produced
// after the one before was yielded and before the Consumer asks again:
// from the third on, each comes in the answer to a ConsumeNext that was on
// the wire before the message before it was answered, and no Consume is
// sent after the second (the old Consumer sent one Consume per message,
// after yielding the message before). Every message is yielded once, in
// order.
func TestConsumerKeepsPollAheadAtEnd(t *testing.T) {
	networks(t, engine.Options{}, server.Options{}, func(t *testing.T, b *broker) {
		var h countOps
		c := b.dial(client.WithHooks(&h))
		prod := b.dial()
		ctx := testCtx(t)
		createTopic(t, prod, "end")
		if _, err := prod.Produce(ctx, "end", payload(0)); err != nil {
			t.Fatal(err)
		}
		const n = 20
		cs := client.NewConsumer(c, "end", 0, client.ConsumeWait(10*time.Second))
		want := 0
		for m, err := range cs.Messages(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if m.Offset != uint64(want) || string(m.Value) != string(payload(want)) {
				t.Fatalf("message %d: offset %d, %q", want, m.Offset, m.Value)
			}
			// Message 0 came to the first Consume, message 1 to the second
			// (the first answer showed the end), which had ConsumeNext 1
			// behind it; message k ≥ 2 to ConsumeNext k−1, sent with
			// ConsumeNext k−2 still waiting.
			wantCons, wantNexts := int64(min(want+1, 2)), int64(want)
			if cons, nexts := h.consumes.Load(), h.nexts.Load(); cons != wantCons || nexts != wantNexts {
				t.Fatalf("yielding message %d: %d Consume and %d ConsumeNext written, want %d and %d", want, cons, nexts, wantCons, wantNexts)
			}
			if want++; want == n {
				break
			}
			if _, err := prod.Produce(ctx, "end", payload(want)); err != nil {
				t.Fatal(err)
			}
		}
		if want != n {
			t.Fatalf("%d messages", want)
		}
	})
}

// refuseNextProxy relays a client's connection to a broker, but answers a
// ConsumeNext as a broker that does not know it does: UnknownOpcode at
// once (before the answers of requests still waiting), then the connection
// closes as the broker closes it (oldBrokerProxy).
func refuseNextProxy(t *testing.T, target string, refused *atomic.Int64) string {
	return refusingProxy(t, target, refused, false)
}

// rawBody encodes as the bytes it holds.
type rawBody []byte

func (b rawBody) AppendTo(dst []byte) []byte { return append(dst, b...) }

// A Consumer against a broker that does not know ConsumeNext (it answers
// UnknownOpcode and closes the connection, as an older broker would)
// yields every message once, in order, and no error: the requests it sent
// ahead at the end are read again the ordinary way, and it sends no
// ConsumeNext after the refusal: the broker gets one. (A second may be
// written on the refusing connection before the refusal is read, when the
// answer to the poll before it came first; the broker no longer reads it.)
func TestConsumerWithoutConsumeNext(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	var refused atomic.Int64
	var h countOps
	c := b.dialAt(refuseNextProxy(t, b.Addr, &refused), client.WithHooks(&h), client.WithReconnect(time.Millisecond, 10*time.Millisecond))
	prod := b.dial()
	ctx := testCtx(t)
	createTopic(t, prod, "old")
	if _, err := prod.Produce(ctx, "old", payload(0)); err != nil {
		t.Fatal(err)
	}
	const n = 10
	cs := client.NewConsumer(c, "old", 0, client.ConsumeWait(10*time.Second))
	want := 0
	for m, err := range cs.Messages(ctx) {
		if err != nil {
			t.Fatalf("at message %d: %v", want, err)
		}
		if m.Offset != uint64(want) || string(m.Value) != string(payload(want)) {
			t.Fatalf("message %d: offset %d, %q", want, m.Offset, m.Value)
		}
		if want++; want == n {
			break
		}
		if _, err := prod.Produce(ctx, "old", payload(want)); err != nil {
			t.Fatal(err)
		}
	}
	if want != n || refused.Load() != 1 || h.nexts.Load() > 2 {
		t.Fatalf("%d messages, %d ConsumeNext refused, %d written; want %d, 1, at most 2", want, refused.Load(), h.nexts.Load(), n)
	}
}
