package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// ack is a produce the server acknowledged.
type ack struct {
	base uint64
	msgs []string
}

// produceUntilClosed produces 3-message batches to topic with up to
// inFlight requests outstanding until the server ends the connection, and
// returns what was acknowledged. ShuttingDown answers stop the sending;
// any other error answer is a failure.
func produceUntilClosed(p *peer, producer, inFlight int, topic string, onAck func()) ([]ack, error) {
	var acks []ack
	pending := map[uint64][]string{}
	seq := uint64(0)
	sending := true
	send := func() {
		seq++
		msgs := []string{fmt.Sprintf("p%d-s%d-a", producer, seq), fmt.Sprintf("p%d-s%d-b", producer, seq), fmt.Sprintf("p%d-s%d-c", producer, seq)}
		batch := appendBatch(nil, msgs...)
		if err := p.send(netproto.OpProduce, seq, &netproto.ProduceRequest{Topic: []byte(topic), Batch: batch}); err != nil {
			sending = false // the server closed: the unsent one is not pending
			return
		}
		pending[seq] = msgs
	}
	for range inFlight {
		send()
	}
	for i := 0; i < 1_000_000 && len(pending) > 0; i++ {
		h, body, err := p.recv(ioTimeout)
		if errors.Is(err, io.EOF) || isReset(err) {
			return acks, nil // the unanswered requests were not acknowledged
		}
		if err != nil {
			return acks, err
		}
		msgs, ok := pending[h.RequestID]
		if !ok || h.Opcode != netproto.OpProduce {
			return acks, fmt.Errorf("unexpected answer %+v", h)
		}
		delete(pending, h.RequestID)
		switch h.Status {
		case netproto.CodeOK:
			var pr netproto.ProduceResponse
			if err := pr.Decode(body); err != nil || pr.Count != 3 {
				return acks, fmt.Errorf("produce answer %+v: %v", pr, err)
			}
			acks = append(acks, ack{pr.BaseOffset, msgs})
			onAck()
		case netproto.CodeShuttingDown:
			sending = false
		default:
			return acks, fmt.Errorf("produce %d: %v", h.RequestID, netproto.DecodeError(h.Status, body))
		}
		if sending {
			send()
		}
	}
	return acks, nil
}

// Promise (Server.Shutdown): producers
// pipelining on their own connections while Shutdown runs lose nothing
// acknowledged: after Shutdown and the engine's Close, a reopened engine
// holds every acknowledged batch at its acknowledged offset with its
// content; Serve returns ErrServerClosed and new connections are refused.
func TestShutdownUnderLoad(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			const producers, inFlight, shutdownAfter = 4, 4, 300
			dir := t.TempDir()
			e := openEngine(t, engine.Options{Dir: dir})
			ts := startServer(t, e, network, Options{AutoCreateTopics: true})

			var acked atomic.Int64
			enough := make(chan struct{})
			onAck := func() {
				if acked.Add(1) == shutdownAfter {
					close(enough)
				}
			}
			results := make([][]ack, producers)
			errs := make([]error, producers)
			var wg sync.WaitGroup
			for i := range producers {
				p := mustDial(t, ts, "")
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = produceUntilClosed(p, i, inFlight, "load", onAck)
				}()
			}
			select {
			case <-enough:
			case <-time.After(ioTimeout):
				t.Fatalf("only %d acks before the timeout", acked.Load())
			}
			shutdown(t, ts)
			wg.Wait() // each producer ends when its connection closes
			for i, err := range errs {
				if err != nil {
					t.Fatalf("producer %d: %v", i, err)
				}
			}
			if p, err := dialPeer(network, ts.addr); err == nil {
				_, herr := p.hello("")
				p.Close()
				if herr == nil {
					t.Fatal("a new connection was served after Shutdown")
				}
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}

			stored := map[uint64]string{}
			for _, m := range engineMessages(t, openEngine(t, engine.Options{Dir: dir}), "load") {
				stored[m.off] = m.val
			}
			total := 0
			for i, acks := range results {
				for _, a := range acks {
					for k, m := range a.msgs {
						if got, ok := stored[a.base+uint64(k)]; !ok || got != m {
							t.Fatalf("producer %d: acknowledged %q at %d, stored %q (present %v)", i, m, a.base+uint64(k), got, ok)
						}
					}
				}
				total += len(acks)
			}
			t.Logf("%d batches acknowledged (shutdown after %d), %d messages stored", total, shutdownAfter, len(stored))
			if len(stored) < 3*total {
				t.Fatalf("%d messages stored for %d acknowledged batches", len(stored), total)
			}
		})
	}
}

// Promise (Server.Shutdown): long polls end at once with an empty answer,
// ConsumeNexts queued behind one too, watches and idle connections are
// closed, and Shutdown returns promptly, not after the polls' wait or the
// idle timeout.
func TestShutdownEndsLongPolls(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true})
	p := mustDial(t, ts, "")
	p.mustProduce(t, "t", batchOf(t, "x"))
	p.mustSend(t, netproto.OpConsume, 50, &netproto.ConsumeRequest{Topic: []byte("t"), Offset: 1, MaxWaitMillis: 30000})
	p.mustSend(t, netproto.OpConsumeNext, 51, &netproto.ConsumeNextRequest{Topic: []byte("t"), After: 50, MaxWaitMillis: 30000})
	p.mustSend(t, netproto.OpConsumeNext, 52, &netproto.ConsumeNextRequest{Topic: []byte("t"), After: 51, MaxWaitMillis: 30000})
	w := mustDial(t, ts, "")
	w.mustCall(t, netproto.OpWatch, &netproto.WatchRequest{Topics: [][]byte{[]byte("t")}}, nil)
	var idle []*peer
	for range 20 {
		idle = append(idle, mustDial(t, ts, ""))
	}
	if h, _, err := p.recv(100 * time.Millisecond); !isTimeout(err) {
		t.Fatalf("the poll answered early: %+v %v", h, err)
	}

	start := time.Now()
	shutdown(t, ts)
	if took := time.Since(start); took > 10*time.Second { // the poll waits 30 s
		t.Fatalf("Shutdown took %v", took)
	}
	for id := uint64(50); id <= 52; id++ {
		h, body, err := p.recv(ioTimeout)
		var resp netproto.ConsumeResponse
		if err != nil || h.RequestID != id || h.Status != 0 || resp.Decode(body) != nil || resp.BatchBytes != 0 || resp.End != 1 {
			t.Fatalf("long poll %d at shutdown: %+v %+v %v", id, h, resp, err)
		}
	}
	for _, c := range append(idle, p, w) {
		// The watch's first event may still be unread.
		if _, _, err := c.expectEnd(1, ioTimeout); err != nil {
			t.Fatal(err)
		}
	}
}

// Promise (Server.Shutdown): when ctx ends before the connections finish
// (here a handler blocked writing to a client that does not read),
// Shutdown closes them at once and returns ctx's error.
func TestShutdownDeadline(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "unix", Options{AutoCreateTopics: true})
	p := mustDial(t, ts, "")
	big := strings.Repeat("b", 1<<20)
	for range 8 {
		p.mustProduce(t, "t", batchOf(t, big))
	}
	// 4 x 8 MiB of answers that are never read fill every socket buffer.
	for i := range 4 {
		p.mustSend(t, netproto.OpConsume, uint64(100+i), &netproto.ConsumeRequest{Topic: []byte("t")})
	}
	// Reading the first answer shows that the server is writing; the other
	// 24 MiB do not fit the socket buffers, so a handler stays blocked in
	// its write (WriteTimeout is 30 seconds).
	if _, _, err := p.recv(ioTimeout); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ts.Shutdown(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	if took > 10*time.Second { // the blocked write's WriteTimeout is 30 s
		t.Fatalf("Shutdown took %v after its deadline", took)
	}
	select {
	case err := <-ts.served:
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve = %v", err)
		}
		ts.served <- err
	case <-time.After(ioTimeout):
		t.Fatal("Serve did not return")
	}
}
