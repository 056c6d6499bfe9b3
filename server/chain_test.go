package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// recvConsume reads one consume answer within timeout and checks it
// answers request id with opcode op; it returns its messages and End.
func recvConsume(t *testing.T, p *peer, op netproto.Opcode, id uint64, timeout time.Duration) ([]message, uint64) {
	t.Helper()
	h, body, err := p.recv(timeout)
	if err != nil || h.RequestID != id || h.Opcode != op || h.Status != netproto.CodeOK {
		var e error
		if err == nil && h.Status != netproto.CodeOK {
			e = netproto.DecodeError(h.Status, body)
		}
		t.Fatalf("want the answer to %v %d: %+v %v %v", op, id, h, err, e)
	}
	var resp netproto.ConsumeResponse
	if err := resp.Decode(body); err != nil {
		t.Fatal(err)
	}
	got, err := decodeBatches(resp.Batches)
	if err != nil {
		t.Fatal(err)
	}
	return got, resp.End
}

// Promise (PROTOCOL.md, ConsumeNext): a consumer at the end of a topic
// that keeps a ConsumeNext behind its long poll gets each new message
// without sending another request for it: the broker holds the next long
// poll while the answer to the current one travels, and each ConsumeNext
// reads on exactly where the answer it follows ended (no message skipped
// or repeated), including after a Limit cut the answer short.
func TestConsumeNextFollowsLongPoll(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, network, Options{AutoCreateTopics: true})
			prod := mustDial(t, ts, "")
			prod.mustProduce(t, "t", batchOf(t, "m0"))
			c := mustDial(t, ts, "")
			const wait = 20000 // ms
			topic := []byte("t")
			c.mustSend(t, netproto.OpConsume, 1, &netproto.ConsumeRequest{Topic: topic, Offset: 1, MaxWaitMillis: wait})
			c.mustSend(t, netproto.OpConsumeNext, 2, &netproto.ConsumeNextRequest{Topic: topic, After: 1, MaxWaitMillis: wait})
			if h, _, err := c.recv(150 * time.Millisecond); !isTimeout(err) {
				t.Fatalf("answered before any data: %+v %v", h, err)
			}
			// Each produce is answered by the oldest request still open;
			// the consumer sends the next ConsumeNext only after it has
			// the answer, as a Consumer does, so one request always waits
			// at the broker.
			prod.mustProduce(t, "t", batchOf(t, "m1"))
			if got, _ := recvConsume(t, c, netproto.OpConsume, 1, 10*time.Second); len(got) != 1 || got[0] != (message{1, "m1"}) {
				t.Fatalf("consume 1 returned %v", got)
			}
			c.mustSend(t, netproto.OpConsumeNext, 3, &netproto.ConsumeNextRequest{Topic: topic, After: 2, MaxWaitMillis: wait})
			prod.mustProduce(t, "t", batchOf(t, "m2", "m3", "m4"))
			if got, _ := recvConsume(t, c, netproto.OpConsumeNext, 2, 10*time.Second); len(got) != 3 || got[0] != (message{2, "m2"}) {
				t.Fatalf("consume-next 2 returned %v", got)
			}
			// A Limit cuts an answer inside a batch: the next reads on
			// from the cut, not from the batch's end.
			c.mustSend(t, netproto.OpConsumeNext, 4, &netproto.ConsumeNextRequest{Topic: topic, After: 3, Limit: 1, MaxWaitMillis: wait})
			c.mustSend(t, netproto.OpConsumeNext, 5, &netproto.ConsumeNextRequest{Topic: topic, After: 4, MaxWaitMillis: wait})
			prod.mustProduce(t, "t", batchOf(t, "m5", "m6"))
			if got, _ := recvConsume(t, c, netproto.OpConsumeNext, 3, 10*time.Second); len(got) != 2 || got[0] != (message{5, "m5"}) {
				t.Fatalf("consume-next 3 returned %v", got)
			}
			// 4 starts at 7 (the end), waits; a produce answers it with
			// one message of two (Limit 1), and 5 then starts at 8.
			prod.mustProduce(t, "t", batchOf(t, "m7", "m8"))
			if got, _ := recvConsume(t, c, netproto.OpConsumeNext, 4, 10*time.Second); len(got) != 2 || got[0] != (message{7, "m7"}) {
				t.Fatalf("consume-next 4 returned %v", got)
			}
			got, end := recvConsume(t, c, netproto.OpConsumeNext, 5, 10*time.Second)
			if len(got) != 2 || got[1] != (message{8, "m8"}) || end != 9 {
				t.Fatalf("consume-next 5 after a Limit 1 answer returned %v, end %d; want the batch holding 8", got, end)
			}
		})
	}
}

// Promise: a ConsumeNext that names no consume of its topic on its
// connection (never sent, another topic's, already followed) is refused
// with Malformed and the connection goes on; one that follows a consume
// that failed fails with the same error.
func TestConsumeNextRefused(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true})
	p := mustDial(t, ts, "")
	p.mustProduce(t, "t", batchOf(t, "m0"))
	p.mustProduce(t, "u", batchOf(t, "u0"))
	_, err := p.call(netproto.OpConsumeNext, &netproto.ConsumeNextRequest{Topic: []byte("t"), After: 999})
	wantCode(t, err, netproto.CodeMalformed)
	p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("u")})
	id := p.next
	_, err = p.call(netproto.OpConsumeNext, &netproto.ConsumeNextRequest{Topic: []byte("t"), After: id})
	wantCode(t, err, netproto.CodeMalformed)

	p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("t")})
	id = p.next
	var r netproto.ConsumeResponse
	p.mustCall(t, netproto.OpConsumeNext, &netproto.ConsumeNextRequest{Topic: []byte("t"), After: id}, &r)
	if r.BatchBytes != 0 || r.End != 1 {
		t.Fatalf("consume-next after the whole topic: %+v", r)
	}
	_, err = p.call(netproto.OpConsumeNext, &netproto.ConsumeNextRequest{Topic: []byte("t"), After: id})
	wantCode(t, err, netproto.CodeMalformed) // already followed

	_, err = p.consume(netproto.ConsumeRequest{Topic: []byte("t"), Offset: 50})
	wantCode(t, err, netproto.CodeOffsetOutOfRange)
	id = p.next
	_, err = p.call(netproto.OpConsumeNext, &netproto.ConsumeNextRequest{Topic: []byte("t"), After: id})
	wantCode(t, err, netproto.CodeOffsetOutOfRange)
	p.mustProduce(t, "t", batchOf(t, "still open"))
}

// Promise: a ConsumeNext that follows a long poll whose wait ran out with
// nothing to send is answered at once, empty, instead of waiting in turn:
// one left behind by a consumer that went away holds an in-flight slot for
// one wait, not two. The one after it waits again.
func TestConsumeNextAfterExpiredPoll(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true, MaxWait: time.Hour})
	p := mustDial(t, ts, "")
	p.mustProduce(t, "t", batchOf(t, "m0"))
	topic := []byte("t")
	p.mustSend(t, netproto.OpConsume, 1, &netproto.ConsumeRequest{Topic: topic, Offset: 1, MaxWaitMillis: 50})
	p.mustSend(t, netproto.OpConsumeNext, 2, &netproto.ConsumeNextRequest{Topic: topic, After: 1, MaxWaitMillis: 3_600_000})
	p.mustSend(t, netproto.OpConsumeNext, 3, &netproto.ConsumeNextRequest{Topic: topic, After: 2, MaxWaitMillis: 3_600_000})
	for _, id := range []uint64{1, 2} {
		got, end := recvConsume(t, p, map[uint64]netproto.Opcode{1: netproto.OpConsume, 2: netproto.OpConsumeNext}[id], id, 30*time.Second)
		if len(got) != 0 || end != 1 {
			t.Fatalf("request %d: %v, end %d; want an empty answer", id, got, end)
		}
	}
	if h, _, err := p.recv(150 * time.Millisecond); !isTimeout(err) {
		t.Fatalf("the ConsumeNext after the immediate answer did not wait: %+v %v", h, err)
	}
	p2 := mustDial(t, ts, "")
	p2.mustProduce(t, "t", batchOf(t, "m1"))
	if got, _ := recvConsume(t, p, netproto.OpConsumeNext, 3, 30*time.Second); len(got) != 1 || got[0] != (message{1, "m1"}) {
		t.Fatalf("request 3 returned %v", got)
	}
}

// Promise: request ids may be used again once answered; a ConsumeNext
// naming an id follows the latest consume sent under it, not an older one
// the connection still remembers.
func TestConsumeNextFollowsLatestUseOfID(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true})
	p := mustDial(t, ts, "")
	p.mustProduce(t, "t", batchOf(t, "m0", "m1", "m2"))
	topic := []byte("t")
	p.mustSend(t, netproto.OpConsume, 7, &netproto.ConsumeRequest{Topic: topic, Offset: 0, Limit: 1})
	recvConsume(t, p, netproto.OpConsume, 7, 10*time.Second)
	p.mustSend(t, netproto.OpConsume, 8, &netproto.ConsumeRequest{Topic: topic, Offset: 3})
	recvConsume(t, p, netproto.OpConsume, 8, 10*time.Second)
	p.mustSend(t, netproto.OpConsume, 7, &netproto.ConsumeRequest{Topic: topic, Offset: 3})
	recvConsume(t, p, netproto.OpConsume, 7, 10*time.Second)
	// Follows the second consume 7 (ended at 3), not the first (ended at 1).
	p.mustSend(t, netproto.OpConsumeNext, 9, &netproto.ConsumeNextRequest{Topic: topic, After: 7})
	if got, end := recvConsume(t, p, netproto.OpConsumeNext, 9, 10*time.Second); len(got) != 0 || end != 3 {
		t.Fatalf("consume-next after the second use of id 7: %v, end %d; want nothing from offset 3", got, end)
	}
}

// Promise: a ConsumeNext queued behind a long poll that is still waiting
// takes no goroutine of its own (the one that answers the poll answers it
// next), so keeping one behind each poll costs a follower no goroutine
// start or wake-up; each is still answered, in order.
func TestConsumeNextQueuedWithoutGoroutine(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true})
	prod := mustDial(t, ts, "")
	prod.mustProduce(t, "t", batchOf(t, "m0"))
	c := mustDial(t, ts, "")
	topic := []byte("t")
	c.mustSend(t, netproto.OpConsume, 1, &netproto.ConsumeRequest{Topic: topic, Offset: 1, MaxWaitMillis: 20000})
	for id := uint64(2); id <= 4; id++ {
		c.mustSend(t, netproto.OpConsumeNext, id, &netproto.ConsumeNextRequest{Topic: topic, After: id - 1, MaxWaitMillis: 20000})
	}
	if h, _, err := c.recv(150 * time.Millisecond); !isTimeout(err) {
		t.Fatalf("answered before any data: %+v %v", h, err)
	}
	if n := spawned(ts); n != 1 {
		t.Fatalf("%d handler goroutines for a long poll and three ConsumeNexts queued behind it, want 1", n)
	}
	for i, id := 1, uint64(1); id <= 4; i, id = i+1, id+1 {
		prod.mustProduce(t, "t", batchOf(t, fmt.Sprint("m", i)))
		op := netproto.OpConsumeNext
		if id == 1 {
			op = netproto.OpConsume
		}
		if got, _ := recvConsume(t, c, op, id, 10*time.Second); len(got) != 1 || got[0] != (message{uint64(i), fmt.Sprint("m", i)}) {
			t.Fatalf("request %d returned %v", id, got)
		}
	}
}
