package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/server"
)

// A caller with the only call in flight reads its own response: no other
// goroutine is woken to read it and hand it over (the latency of one
// request at a time). Checked by the frames the connection's background
// reader read: none, over produces, consumes and admin calls.
func TestCallerReadsOwnResponse(t *testing.T) {
	networks(t, engine.Options{}, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		ctx := testCtx(t)
		createTopic(t, c, "own")
		var buf client.ConsumeBuffer
		for i := range 100 {
			off, err := c.Produce(ctx, "own", payload(i))
			if err != nil || off != uint64(i) {
				t.Fatalf("produce %d: %d, %v", i, off, err)
			}
			m, err := c.Consume(ctx, "own", off, 1, &buf)
			if err != nil || m.Len() != 1 || string(m.At(0).Value) != string(payload(i)) {
				t.Fatalf("consume %d: %v", i, err)
			}
			if _, end, err := c.Offsets(ctx, "own"); err != nil || end != uint64(i+1) {
				t.Fatalf("offsets: %d, %v", end, err)
			}
		}
		if n := client.BackgroundFrames(c); n != 0 {
			t.Fatalf("the background reader read %d of 300 responses; want 0 (each caller reads its own)", n)
		}
	})
}

// A Producer with linger 0 and its batch acked before the next Send
// writes each batch from Send itself (or from the acker, when a slot
// frees), never waking its sender goroutine for it; every message is
// stored once, in order.
func TestLingerZeroSendWrites(t *testing.T) {
	networks(t, engine.Options{}, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		ctx := testCtx(t)
		createTopic(t, c, "l0")
		acked := make(chan uint64, 1)
		p := client.NewProducer(c, "l0", client.ProducerLinger(0),
			client.ProducerOnAck(func(base uint64, n int) { acked <- base + uint64(n) }))
		const n = 100
		for i := range n {
			if err := p.Send(ctx, payload(i)); err != nil {
				t.Fatal(err)
			}
			select {
			case end := <-acked:
				if end != uint64(i+1) {
					t.Fatalf("ack after message %d ends at %d", i, end)
				}
			case <-ctx.Done():
				t.Fatal("no ack")
			}
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		// The first batch waits for the producer id, which the sender asks
		// for: it may write that one.
		if w := client.SenderWrites(p); w > 1 {
			t.Fatalf("the sender goroutine wrote %d of %d batches; want at most 1", w, n)
		}
		consumeAll(t, c, "l0", 0, n, 0)
	})
}

// A caller reading the connection for its own response (the leader) whose
// context ends gives up at once when no frame has begun, and the
// connection goes on: the late response is discarded and the next call
// gets its own. A frame that has begun when the context ends is read to
// its end first, so the next reader starts at a frame boundary.
func TestLeaderContextEnds(t *testing.T) {
	fb := startFakeBroker(t)
	c, err := client.Dial(testCtx(t), fb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// 1. No answer at all: the call ends with its context.
	ctx, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
	start := time.Now()
	_, _, err = c.Offsets(ctx, "t")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered call: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("unanswered call took %v to end with its context", d)
	}
	first := <-fb.reqs
	// 2. The late answer to it is discarded; the next call gets its own.
	fb.answer(first, 7, false)
	ctx2 := testCtx(t)
	done := make(chan error, 1)
	var end uint64
	go func() {
		var err error
		_, end, err = c.Offsets(ctx2, "t")
		done <- err
	}()
	second := <-fb.reqs
	fb.answer(second, 8, false)
	if err := <-done; err != nil || end != 8 {
		t.Fatalf("call after an abandoned one: end %d, %v", end, err)
	}

	// 3. The context ends in the middle of the call's own response: the
	// rest is read, and the connection is still in step.
	ctx3, cancel3 := context.WithCancel(testCtx(t))
	go func() {
		var err error
		_, end, err = c.Offsets(ctx3, "t")
		done <- err
	}()
	third := <-fb.reqs
	answered := make(chan struct{})
	go func() {
		fb.answer(third, 9, true) // half the frame, then waits for resume
		close(answered)
	}()
	time.Sleep(50 * time.Millisecond)
	cancel3()
	time.Sleep(50 * time.Millisecond)
	fb.resume <- struct{}{}
	<-answered
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("call cut mid-frame: %v", err)
	} else if err == nil && end != 9 {
		t.Fatalf("call cut mid-frame: end %d", end)
	}
	go func() {
		var err error
		_, end, err = c.Offsets(testCtx(t), "t")
		done <- err
	}()
	fourth := <-fb.reqs
	fb.answer(fourth, 10, false)
	if err := <-done; err != nil || end != 10 {
		t.Fatalf("call after a frame read across a cancel: end %d, %v", end, err)
	}
}

// fakeBroker answers Hello, then hands every request to the test (reqs),
// which answers Offsets requests with answer.
type fakeBroker struct {
	addr   string
	nc     chan net.Conn
	reqs   chan netproto.Header
	resume chan struct{}
	conn   net.Conn
}

func startFakeBroker(t *testing.T) *fakeBroker {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	fb := &fakeBroker{addr: "tcp://" + l.Addr().String(), reqs: make(chan netproto.Header, 4), resume: make(chan struct{})}
	ready := make(chan net.Conn, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { nc.Close() })
		h, _, err := netproto.ReadRequest(nc, 1<<20, nil)
		if err != nil || h.Opcode != netproto.OpHello {
			nc.Close()
			return
		}
		resp := netproto.HelloResponse{Version: netproto.ProtocolVersion, MaxBody: 1 << 20}
		nc.Write(netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpHello, Flags: netproto.FlagResponse, RequestID: h.RequestID}, &resp))
		ready <- nc
		for {
			h, _, err := netproto.ReadRequest(nc, 1<<20, nil)
			if err != nil {
				return
			}
			fb.reqs <- h
		}
	}()
	fb.nc = ready
	return fb
}

// answer writes the Offsets response to h (end as the end offset); split
// writes half the frame, waits for resume, then writes the rest.
func (fb *fakeBroker) answer(h netproto.Header, end uint64, split bool) {
	if fb.conn == nil {
		fb.conn = <-fb.nc
	}
	resp := netproto.OffsetsResponse{End: end}
	b := netproto.AppendFrame(nil, netproto.Header{Opcode: h.Opcode, Flags: netproto.FlagResponse, RequestID: h.RequestID}, &resp)
	if !split {
		fb.conn.Write(b)
		return
	}
	fb.conn.Write(b[:len(b)/2])
	<-fb.resume
	fb.conn.Write(b[len(b)/2:])
}

// A connection that nobody reads between calls (each caller reads its
// own response) still notices that the broker closed it while idle: the
// next call redials instead of failing on the dead connection.
func TestIdleClientRedialsAfterRestart(t *testing.T) {
	networks(t, engine.Options{}, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial(client.WithReconnect(10*time.Millisecond, 100*time.Millisecond))
		ctx := testCtx(t)
		createTopic(t, c, "idle")
		if _, err := c.Produce(ctx, "idle", payload(0)); err != nil {
			t.Fatal(err)
		}
		b.restart()
		time.Sleep(50 * time.Millisecond) // the close reaches the client's socket
		if _, end, err := c.Offsets(ctx, "idle"); err != nil || end != 1 {
			t.Fatalf("first call after the restart: end %d, %v", end, err)
		}
	})
}

// countWrites counts the consume requests written (HookRequestWritten).
type countWrites struct{ consumes atomic.Int64 }

func (h *countWrites) OnRequestWritten(op client.Opcode, _ int, err error) {
	if op == netproto.OpConsume && err == nil {
		h.consumes.Add(1)
	}
}

// A Consumer behind the topic's end has its next read in flight while it
// yields the messages of the current one (the broker sends, and the
// connection's background reader reads, meanwhile), and yields every
// message once, in order, across responses; caught up (a response that
// reaches the end) it sends nothing ahead.
func TestConsumerReadsAhead(t *testing.T) {
	networks(t, engine.Options{}, server.Options{}, func(t *testing.T, b *broker) {
		var h countWrites
		c := b.dial(client.WithHooks(&h))
		ctx := testCtx(t)
		createTopic(t, c, "ra")
		const n = 40
		for i := range n {
			if _, err := c.Produce(ctx, "ra", payload(i)); err != nil {
				t.Fatal(err)
			}
		}
		cs := client.NewConsumer(c, "ra", 0, client.ConsumeLimit(10), client.ConsumeWait(time.Millisecond))
		want := uint64(0)
		for m, err := range cs.Messages(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if m.Offset != want || string(m.Value) != string(payload(int(want))) {
				t.Fatalf("message %d: offset %d, %q", want, m.Offset, m.Value)
			}
			// Inside the response [10k, 10k+10): its read and the next one's
			// are written, except for the last response (it reaches the end).
			if w, k := h.consumes.Load(), int64(want/10); w != min(k+2, n/10) {
				t.Fatalf("at message %d: %d consume requests written, want %d", want, w, min(k+2, n/10))
			}
			if want++; want == n {
				break
			}
		}
		if want != n {
			t.Fatalf("%d messages", want)
		}
	})
}

// consumeOrder records how many consume requests had been written each
// time a Consume's messages were verified and indexed
// (HookMessagesConsumed runs after that).
type consumeOrder struct {
	countWrites
	mu      sync.Mutex
	written []int64 // at each OnMessagesConsumed
}

func (h *consumeOrder) OnMessagesConsumed(string, *client.Messages, time.Duration) {
	h.mu.Lock()
	h.written = append(h.written, h.consumes.Load())
	h.mu.Unlock()
}

// A Consumer behind the topic's end asks for the next response as soon as
// the current one is in, before it verifies and indexes it: the broker
// reads, verifies and sends the next response while the client checks
// the current one, not only while it yields its messages.
func TestConsumerReadsAheadBeforeVerifying(t *testing.T) {
	networks(t, engine.Options{}, server.Options{}, func(t *testing.T, b *broker) {
		var h consumeOrder
		c := b.dial(client.WithHooks(&h))
		ctx := testCtx(t)
		createTopic(t, c, "rv")
		const n = 40
		for i := range n {
			if _, err := c.Produce(ctx, "rv", payload(i)); err != nil {
				t.Fatal(err)
			}
		}
		cs := client.NewConsumer(c, "rv", 0, client.ConsumeLimit(10), client.ConsumeWait(time.Millisecond))
		got := 0
		for _, err := range cs.Messages(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if got++; got == n {
				break
			}
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		// Response k (of four) was verified once request k+1 had been
		// written, except the last, which reaches the end.
		want := []int64{2, 3, 4, 4}
		if fmt.Sprint(h.written) != fmt.Sprint(want) {
			t.Fatalf("consume requests written when each response was verified: %v, want %v", h.written, want)
		}
	})
}
