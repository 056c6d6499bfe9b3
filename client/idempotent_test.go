package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/server"
)

// proxyAction is what a cutProxy does with one frame from the broker.
type proxyAction int

const (
	forward proxyAction = iota
	// cut closes both connections after the frame was read from the
	// broker, before a byte of it reaches the client: an append whose ack
	// is lost.
	cut
	// tooBusy answers the client with a retriable TooBusy error instead
	// of the broker's frame.
	tooBusy
	// unknownOpcode answers with UnknownOpcode instead: a broker without
	// the operation.
	unknownOpcode
)

// cutProxy is a TCP proxy between a client and a broker that reads the
// broker's responses frame by frame and lets a test decide, per frame,
// whether to forward it, drop the connection or answer something else.
type cutProxy struct {
	t      testing.TB
	l      net.Listener
	target string // the broker's host:port
	decide func(h netproto.Header) proxyAction

	mu    sync.Mutex
	conns []net.Conn
	cuts  int
}

func startProxy(t testing.TB, target string, decide func(h netproto.Header) proxyAction) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, addr := splitAddr(target)
	p := &cutProxy{t: t, l: l, target: addr, decide: decide}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) addr() string { return "tcp://" + p.l.Addr().String() }

func (p *cutProxy) close() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *cutProxy) cutCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

func (p *cutProxy) accept() {
	for {
		cc, err := p.l.Accept()
		if err != nil {
			return
		}
		bc, err := net.Dial("tcp", p.target)
		if err != nil {
			cc.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, cc, bc)
		p.mu.Unlock()
		go func() {
			io.Copy(bc, cc)
			bc.Close()
		}()
		go p.responses(cc, bc)
	}
}

// responses relays the broker's frames to the client, one whole frame at
// a time, as decide says.
func (p *cutProxy) responses(cc, bc net.Conn) {
	defer cc.Close()
	defer bc.Close()
	var hb [netproto.HeaderSize]byte
	var body []byte
	for {
		h, err := netproto.ReadHeader(bc, &hb)
		if err != nil {
			return
		}
		body = append(body[:0], make([]byte, h.BodyLen)...)
		if _, err := io.ReadFull(bc, body); err != nil {
			return
		}
		var out []byte
		switch p.decide(h) {
		case forward:
			out = append(h.AppendTo(nil), body...)
		case cut:
			p.mu.Lock()
			p.cuts++
			p.mu.Unlock()
			return
		case tooBusy:
			out = netproto.AppendErrorFrame(nil, h.Opcode, h.RequestID, &netproto.Error{Code: netproto.CodeTooBusy, Retriable: true, Message: "proxy: too busy"})
		case unknownOpcode:
			out = netproto.AppendErrorFrame(nil, h.Opcode, h.RequestID, &netproto.Error{Code: netproto.CodeUnknownOpcode, Message: "proxy: " + h.Opcode.String()})
		}
		if _, err := cc.Write(out); err != nil {
			return
		}
	}
}

// produceAcks counts the broker's produce acks through a proxy and picks
// the ones to act on.
type produceAcks struct {
	mu   sync.Mutex
	n    int
	plan map[int]proxyAction // by the ack's number, from 1
}

func (a *produceAcks) decide(h netproto.Header) proxyAction {
	if h.Opcode != netproto.OpProduce || h.Status != netproto.CodeOK {
		return forward
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	return a.plan[a.n]
}

// TestProducerRetriesLostAck cuts the connection right after the broker
// acknowledged a batch, before the ack reaches the client, and answers
// another ack with a retriable TooBusy: the idempotent Producer resends
// the same batches and the broker stores each exactly once, in order,
// with dense offsets.
func TestProducerRetriesLostAck(t *testing.T) {
	for _, inFlight := range []int{1, 4} {
		t.Run(fmt.Sprintf("inflight=%d", inFlight), func(t *testing.T) {
			b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
			acks := &produceAcks{plan: map[int]proxyAction{2: cut, 5: cut, 6: tooBusy, 9: cut}}
			px := startProxy(t, b.Addr, acks.decide)
			c := b.dialAt(px.addr(), client.WithReconnect(5*time.Millisecond, 50*time.Millisecond))
			ctx := testCtx(t)
			createTopic(t, c, "exactly-once")
			if id, err := c.InitProducer(ctx); err != nil || id == 0 {
				t.Fatalf("InitProducer: %d, %v (the broker must support idempotent producers)", id, err)
			}
			var got ackLog
			p := client.NewProducer(c, "exactly-once", client.ProducerMaxMessages(100), client.ProducerMaxInFlight(inFlight),
				client.ProducerLinger(0), client.ProducerOnAck(got.onAck),
				client.ProducerOnError(func(msg []byte, err error) { t.Errorf("%q failed: %v", msg, err) }))
			const n = 2000
			for i := range n {
				if err := p.Send(ctx, payload(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if px.cutCount() != 3 {
				t.Fatalf("%d cuts, want 3", px.cutCount())
			}
			got.dense(t, n)
			if _, end, err := c.Offsets(ctx, "exactly-once"); err != nil || end != n {
				t.Fatalf("end offset %d, %v; want %d: a resent batch was stored twice or lost", end, err, n)
			}
			consumeAll(t, c, "exactly-once", 0, n, 0) // each message once, in order, offsets dense
			hs := storedHeaders(t, b.EngineOptions.Dir, "exactly-once")
			for i, h := range hs {
				if h.ProducerID == 0 || h.ProducerID != hs[0].ProducerID || h.Sequence != uint32(i) {
					t.Fatalf("batch %d: producer %d, sequence %d", i, h.ProducerID, h.Sequence)
				}
			}
		})
	}
}

// TestProducerRetriesAcrossRestart loses an ack and restarts the broker
// before the Producer resends: the restarted broker knows the batch from
// its log tail and answers the resend with the original offsets.
func TestProducerRetriesAcrossRestart(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
	cutNow := make(chan struct{}, 1)
	acks := &produceAcks{plan: map[int]proxyAction{3: cut}}
	px := startProxy(t, b.Addr, func(h netproto.Header) proxyAction {
		a := acks.decide(h)
		if a == cut {
			cutNow <- struct{}{}
		}
		return a
	})
	// The Producer waits 150-300ms before its first resend: time for the
	// restart.
	c := b.dialAt(px.addr(), client.WithReconnect(300*time.Millisecond, time.Second))
	ctx := testCtx(t)
	createTopic(t, c, "restart")
	var got ackLog
	p := client.NewProducer(c, "restart", client.ProducerMaxMessages(50), client.ProducerLinger(0),
		client.ProducerOnAck(got.onAck),
		client.ProducerOnError(func(msg []byte, err error) { t.Errorf("%q failed: %v", msg, err) }))
	const n = 500
	for i := range n {
		if err := p.Send(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-cutNow:
	case <-ctx.Done():
		t.Fatal("no ack was cut")
	}
	b.restart()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got.dense(t, n)
	if _, end, err := c.Offsets(ctx, "restart"); err != nil || end != n {
		t.Fatalf("end offset %d, %v; want %d", end, err, n)
	}
	consumeAll(t, c, "restart", 0, n, 0)
}

// TestInitProducer: the broker hands out distinct, non-zero ids.
func TestInitProducer(t *testing.T) {
	b := startBroker(t, "unix", engine.Options{}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	seen := map[uint64]bool{}
	for range 10 {
		id, err := c.InitProducer(ctx)
		if err != nil || id == 0 || seen[id] {
			t.Fatalf("InitProducer: %d, %v (seen before: %v)", id, err, seen[id])
		}
		seen[id] = true
	}
}

// TestProducerWithoutInitProducer runs a Producer against a broker that
// answers InitProducer with UnknownOpcode: it produces without producer
// ids, and a batch whose ack is lost fails instead of being resent (it
// may or may not be stored; here it is).
func TestProducerWithoutInitProducer(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
	acks := &produceAcks{plan: map[int]proxyAction{3: cut}}
	px := startProxy(t, b.Addr, func(h netproto.Header) proxyAction {
		if h.Opcode == netproto.OpInitProducer {
			return unknownOpcode
		}
		return acks.decide(h)
	})
	c := b.dialAt(px.addr(), client.WithReconnect(5*time.Millisecond, 50*time.Millisecond))
	ctx := testCtx(t)
	createTopic(t, c, "plain")
	if _, err := c.InitProducer(ctx); !errors.Is(err, client.ErrUnknownOpcode) {
		t.Fatalf("InitProducer through the proxy: %v", err)
	}
	var mu sync.Mutex
	var failed [][]byte
	p := client.NewProducer(c, "plain", client.ProducerMaxMessages(10), client.ProducerLinger(0),
		client.ProducerOnError(func(msg []byte, err error) {
			mu.Lock()
			defer mu.Unlock()
			if !errors.Is(err, client.ErrDisconnected) {
				t.Errorf("%q: %v", msg, err)
			}
			failed = append(failed, bytes.Clone(msg))
		}))
	for i := range 50 {
		if err := p.Send(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			p.Flush(ctx) // one batch in flight at a time: the third is the one cut
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The failed messages are the cut batch: a run of consecutive ones.
	if len(failed) == 0 {
		t.Fatal("no message failed")
	}
	var first int
	fmt.Sscanf(string(failed[0]), "message %d", &first)
	for i, m := range failed {
		if !bytes.Equal(m, payload(first+i)) {
			t.Fatalf("failed messages: %q", failed)
		}
	}
	consumeAll(t, c, "plain", 0, 50, 0) // stored once: it was not resent
	for _, h := range storedHeaders(t, b.EngineOptions.Dir, "plain") {
		if h.ProducerID != 0 {
			t.Fatalf("batch at %d carries producer id %d", h.BaseOffset, h.ProducerID)
		}
	}
}
