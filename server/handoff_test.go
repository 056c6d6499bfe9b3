package server

import (
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// A client that reads one response at a time gets its consumes answered
// by the connection's reader itself: no goroutine is started (nor a
// thread woken to run it) per consume. A long poll that has to wait still
// gets a goroutine of its own, so the connection keeps reading meanwhile:
// a produce sent behind the waiting poll is answered, and wakes it.
func TestConsumeAnsweredByReader(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, network, Options{AutoCreateTopics: true})
			p := mustDial(t, ts, "")
			for i := range 50 {
				p.mustProduce(t, "t", batchOf(t, "m"))
				r := p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("t"), Offset: uint64(i), MaxWaitMillis: 1000})
				if r.BatchBytes == 0 {
					t.Fatalf("consume %d: nothing", i)
				}
			}
			if n := spawned(ts); n != 0 {
				t.Fatalf("%d handler goroutines for 50 consumes answerable at once; want 0", n)
			}

			// A long poll at the end, then a produce on the same connection.
			if err := p.send(netproto.OpConsume, 1001, &netproto.ConsumeRequest{Topic: []byte("t"), Offset: 50, MaxWaitMillis: 20000}); err != nil {
				t.Fatal(err)
			}
			if err := p.send(netproto.OpProduce, 1002, &netproto.ProduceRequest{Topic: []byte("t"), Batch: batchOf(t, "late")}); err != nil {
				t.Fatal(err)
			}
			got := map[uint64]bool{}
			for range 2 {
				h, body, err := p.recv(ioTimeout)
				if err != nil {
					t.Fatal(err)
				}
				if h.Status != netproto.CodeOK {
					t.Fatalf("request %d: status %v", h.RequestID, h.Status)
				}
				if h.RequestID == 1001 {
					var r netproto.ConsumeResponse
					if err := r.DecodeFixed(body); err != nil || r.BatchBytes == 0 {
						t.Fatalf("long poll: %+v, %v", r, err)
					}
				}
				got[h.RequestID] = true
			}
			if !got[1001] || !got[1002] {
				t.Fatalf("answers: %v", got)
			}
			if n := spawned(ts); n != 1 {
				t.Fatalf("%d handler goroutines after one waiting long poll; want 1", n)
			}
		})
	}
}

// spawned sums the handler goroutines started on ts's connections.
func spawned(ts *testServer) int64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var n int64
	for c := range ts.conns {
		n += c.spawned.Load()
	}
	return n
}

// yields sums the direct produces on ts's connections that let a woken
// long poll run before their ack.
func yields(ts *testServer) int64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var n int64
	for c := range ts.conns {
		n += c.yields.Load()
	}
	return n
}

// A produce that wakes a long poll waiting on its topic lets the woken
// poll read and send the new data before the producer's ack is written:
// the consumer's latency does not include the ack's write. A produce that
// wakes nobody answers at once.
func TestProduceYieldsToWokenLongPoll(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, network, Options{AutoCreateTopics: true})
			p := mustDial(t, ts, "")
			cons := mustDial(t, ts, "")
			p.mustProduce(t, "t", batchOf(t, "first"))
			if n := yields(ts); n != 0 {
				t.Fatalf("%d yields with nobody waiting; want 0", n)
			}
			if err := cons.send(netproto.OpConsume, 7, &netproto.ConsumeRequest{Topic: []byte("t"), Offset: 1, MaxWaitMillis: 20000}); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(ioTimeout); e.Waiters("t") == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the long poll never waited")
				}
			}
			p.mustProduce(t, "t", batchOf(t, "second"))
			h, body, err := cons.recv(ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			var r netproto.ConsumeResponse
			if h.RequestID != 7 || h.Status != netproto.CodeOK || r.DecodeFixed(body) != nil || r.BatchBytes == 0 {
				t.Fatalf("long poll answered %+v: %+v", h, r)
			}
			if n := yields(ts); n != 1 {
				t.Fatalf("%d yields after a produce that woke one long poll; want 1", n)
			}
			p.mustProduce(t, "t", batchOf(t, "third"))
			if n := yields(ts); n != 1 {
				t.Fatalf("%d yields after a produce that woke nobody; want 1", n)
			}

			// Fan-out: with more polls waiting than maxYieldWaiters, the ack
			// goes first (it would wait for every one of them).
			polls := make([]*peer, maxYieldWaiters+1)
			for i := range polls {
				polls[i] = mustDial(t, ts, "")
				if err := polls[i].send(netproto.OpConsume, 8, &netproto.ConsumeRequest{Topic: []byte("t"), Offset: 3, MaxWaitMillis: 20000}); err != nil {
					t.Fatal(err)
				}
			}
			for deadline := time.Now().Add(ioTimeout); e.Waiters("t") < len(polls); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d long polls waiting", e.Waiters("t"), len(polls))
				}
			}
			p.mustProduce(t, "t", batchOf(t, "fourth"))
			for _, c := range polls {
				if h, _, err := c.recv(ioTimeout); err != nil || h.RequestID != 8 || h.Status != netproto.CodeOK {
					t.Fatalf("fan-out poll: %+v %v", h, err)
				}
			}
			if n := yields(ts); n != 1 {
				t.Fatalf("%d yields after a produce that woke %d long polls; want 1", n, len(polls))
			}
		})
	}
}
