package server

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// Promise: 1,000 idle connections and a
// client that sends half a frame header and stalls do not hurt a working
// client: its produce and consume round trips keep working, and the
// stalled client is cut off after ReadTimeout (200ms), while the idle
// ones, within IdleTimeout, stay usable.
func TestIdleAndStalledConnections(t *testing.T) {
	const idle = 1000
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true, ReadTimeout: 200 * time.Millisecond})
	work := mustDial(t, ts, "")
	work.mustProduce(t, "t", batchOf(t, "warm"))

	conns := make([]*peer, 0, idle)
	for i := range idle {
		p := mustDialRaw(t, ts)
		if i%2 == 0 {
			p.mustHello(t, "") // half are sessions, half never sent a byte
		}
		conns = append(conns, p)
	}
	stalled := mustDialRaw(t, ts)
	stalled.mustHello(t, "")
	stallStart := time.Now()
	stalled.mustWrite(t, header(100, netproto.OpProduce, 0, 0, 1)[:8])

	var rtts []time.Duration
	for i := range 100 {
		start := time.Now()
		want := fmt.Sprint("work-", i)
		pr := work.mustProduce(t, "t", batchOf(t, want))
		cr := work.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("t"), Offset: pr.BaseOffset, Limit: 1})
		if ms, err := decodeBatches(cr.Batches); err != nil || ms[0] != (message{pr.BaseOffset, want}) {
			t.Fatalf("round %d: %v %v", i, ms, err)
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	t.Logf("working client with %d idle connections: produce+consume p50 %v, p99 %v, max %v",
		idle, rtts[len(rtts)/2], rtts[len(rtts)*99/100], rtts[len(rtts)-1])
	if rtts[len(rtts)/2] > time.Second {
		t.Fatalf("median round trip %v", rtts[len(rtts)/2])
	}

	hs, _, err := stalled.expectEnd(0, ioTimeout)
	cut := time.Since(stallStart)
	if err != nil {
		t.Fatalf("stalled client: frames %+v: %v", hs, err)
	}
	if cut < 150*time.Millisecond || cut > 5*time.Second {
		t.Fatalf("stalled client cut off after %v, want about ReadTimeout (200ms)", cut)
	}
	t.Logf("stalled client cut off after %v", cut)

	// The idle sessions still work.
	for i := 0; i < idle; i += 100 {
		if _, err := conns[i].offsets("t", 0); err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
	}
}

// Promise: with IdleTimeout, a connection
// that starts no frame is closed; one that keeps starting frames is not.
func TestIdleTimeout(t *testing.T) {
	e := openEngine(t, engine.Options{})
	// The busy client's 50 ms pacing stays far below IdleTimeout even when
	// a loaded machine oversleeps it by a few hundred ms.
	const idle = time.Second
	ts := startServer(t, e, "unix", Options{IdleTimeout: idle})
	busy := mustDial(t, ts, "")
	silentStart := time.Now() // before the dial: the broker's timer starts after it
	silent := mustDial(t, ts, "")
	silentEnd := make(chan error, 1)
	var silentTook time.Duration
	go func() {
		_, _, err := silent.expectEnd(0, ioTimeout)
		silentTook = time.Since(silentStart)
		silentEnd <- err
	}()
	start := time.Now()
	for time.Since(start) < 2*idle {
		if _, err := busy.call(netproto.OpTopics, &netproto.TopicsRequest{}); err != nil {
			t.Fatalf("busy connection: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // pacing the busy client, not synchronisation
	}
	if err := <-silentEnd; err != nil {
		t.Fatal(err)
	}
	if silentTook < idle {
		t.Fatalf("silent connection closed after %v, before IdleTimeout %v", silentTook, idle)
	}
}

// Promise (Options.MaxConns): connections past the limit get one TooBusy
// frame and are closed; once a connection ends, a new one is served.
func TestMaxConns(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, network, Options{MaxConns: 3})
			var held []*peer
			for range 3 {
				held = append(held, mustDial(t, ts, ""))
			}
			for _, hello := range []bool{false, true} {
				p := mustDialRaw(t, ts)
				if hello {
					// The refusal may come, and the server close, before
					// this write: a failed write is fine, the frame must
					// still be readable.
					p.send(netproto.OpHello, 1, &netproto.HelloRequest{Version: 1})
				}
				pe := expectRefused(t, p, netproto.CodeTooBusy)
				if !pe.Retriable {
					t.Fatalf("TooBusy not retriable: %+v", pe)
				}
			}
			for _, p := range held {
				if _, err := p.offsets("x", 0); !isCode(err, netproto.CodeTopicNotFound) {
					t.Fatalf("a held connection broke: %v", err)
				}
			}
			held[0].Close()
			// The server forgets the closed connection on its own time:
			// poll until a new one is served.
			ok := waitFor(ioTimeout, func() bool {
				p, err := dialPeer(ts.network, ts.addr)
				if err != nil {
					return false
				}
				defer p.Close()
				_, err = p.hello("")
				return err == nil
			})
			if !ok {
				t.Fatal("no connection served after one of the three closed")
			}
		})
	}
}

func isCode(err error, code netproto.Code) bool {
	return netproto.CodeOf(err) == code && err != nil
}

// Promise (Options.MaxInFlight): with MaxInFlight 2 and two long polls
// outstanding, the server reads no further frame from that connection
// (backpressure) until one of them finishes.
//
// How it can fail: a third request (Offsets) is sent after the two polls.
// A server that went on reading would answer it at once, within the 300ms
// window in which this test expects silence. A server that applies
// backpressure reads it only after a poll has answered and released its
// slot, so the first frame to arrive must be a poll's answer.
func TestMaxInFlight(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, network, Options{AutoCreateTopics: true, MaxInFlight: 2})
			prod := mustDial(t, ts, "")
			prod.mustProduce(t, "t", batchOf(t, "0"))

			p := mustDial(t, ts, "")
			poll := &netproto.ConsumeRequest{Topic: []byte("t"), Offset: 1, MaxWaitMillis: 20000}
			p.mustSend(t, netproto.OpConsume, 1, poll)
			p.mustSend(t, netproto.OpConsume, 2, poll)
			p.mustSend(t, netproto.OpOffsets, 3, &netproto.OffsetsRequest{Topic: []byte("t")})
			if h, _, err := p.recv(300 * time.Millisecond); !isTimeout(err) {
				t.Fatalf("got %+v %v while two polls held both slots", h, err)
			}
			prod.mustProduce(t, "t", batchOf(t, "1"))
			var ids []uint64
			for range 3 {
				h, _, err := p.recv(ioTimeout)
				if err != nil || h.Status != 0 {
					t.Fatalf("after %v: %+v %v", ids, h, err)
				}
				ids = append(ids, h.RequestID)
			}
			if ids[0] == 3 {
				t.Fatalf("answers in order %v: the Offsets request was read while both slots were held", ids)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, []uint64{1, 2, 3}) {
				t.Fatalf("answers %v", ids)
			}
		})
	}
}

// Promise (Options.MaxWatches; watches hold no in-flight slot): a
// connection with MaxInFlight 1 can hold a watch and still be served, and
// a watch past MaxWatches gets TooBusy.
func TestWatchLimits(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "unix", Options{AutoCreateTopics: true, MaxInFlight: 1, MaxWatches: 2})
	p := mustDial(t, ts, "")
	p.mustProduce(t, "t", batchOf(t, "x"))
	for i := range 3 {
		_, err := p.call(netproto.OpWatch, &netproto.WatchRequest{Topics: [][]byte{[]byte("t")}})
		if i < 2 && err != nil {
			t.Fatalf("watch %d: %v", i, err)
		}
		if i == 2 && !isCode(err, netproto.CodeTooBusy) {
			t.Fatalf("third watch: %v, want TooBusy", err)
		}
	}
	// Both watches are registered and the one slot is free.
	p.mustOffsets(t, "t", 0)
}
