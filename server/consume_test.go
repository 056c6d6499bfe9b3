package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// Promise (PROTOCOL.md, Consume rules): an Offset below Start or above End
// gets OffsetOutOfRange whose ErrorResponse carries the valid Start and
// End; Start and End themselves are valid; the connection goes on.
func TestConsumeOutOfRange(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{SegmentEntries: 1})
			ts := startServer(t, e, network, Options{AutoCreateTopics: true})
			p := mustDial(t, ts, "")
			for i := range 5 {
				p.mustProduce(t, "t", batchOf(t, fmt.Sprint(i, "a"), fmt.Sprint(i, "b")))
			}
			var tr netproto.TruncateResponse
			p.mustCall(t, netproto.OpTruncate, &netproto.TruncateRequest{Topic: []byte("t"), BeforeOffset: 4}, &tr)
			if tr.Start != 4 {
				t.Fatalf("truncated to %d, want 4", tr.Start)
			}
			for _, off := range []uint64{0, 3, 11, 1 << 40, ^uint64(0)} {
				_, err := p.consume(netproto.ConsumeRequest{Topic: []byte("t"), Offset: off})
				pe := wantCode(t, err, netproto.CodeOffsetOutOfRange)
				if pe.Start != 4 || pe.End != 10 || pe.Retriable {
					t.Fatalf("offset %d: error %+v, want range [4, 10), not retriable", off, pe)
				}
			}
			if r := p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("t"), Offset: 4, Limit: 1}); r.Start != 4 || r.BatchBytes == 0 {
				t.Fatalf("consume at start: %+v", r)
			}
			if r := p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("t"), Offset: 10}); r.End != 10 || r.BatchBytes != 0 {
				t.Fatalf("consume at end: %+v", r)
			}
			_, err := p.consume(netproto.ConsumeRequest{Topic: []byte("missing")})
			wantCode(t, err, netproto.CodeTopicNotFound)
		})
	}
}

// Promise: a long poll (MaxWaitMillis) parked at End is answered as soon
// as another connection produces, well before the wait ends, with the new
// batch.
func TestLongPollWakes(t *testing.T) {
	for _, network := range networks {
		for _, mode := range modes {
			t.Run(network+"/"+modeName(mode), func(t *testing.T) {
				e := openEngine(t, engine.Options{})
				ts := startServer(t, e, network, Options{AutoCreateTopics: true, ConsumeMode: mode})
				prod := mustDial(t, ts, "")
				prod.mustProduce(t, "t", batchOf(t, "before"))

				const wait = 20 * time.Second
				c := mustDial(t, ts, "")
				c.mustSend(t, netproto.OpConsume, 1, &netproto.ConsumeRequest{Topic: []byte("t"), Offset: 1, MaxWaitMillis: uint32(wait / time.Millisecond)})
				// Parked: no answer yet. (A server that answered empty at
				// once would fail here.)
				if h, _, err := c.recv(150 * time.Millisecond); !isTimeout(err) {
					t.Fatalf("long poll answered before any data: %+v %v", h, err)
				}
				start := time.Now()
				prod.mustProduce(t, "t", batchOf(t, "wake", "up"))
				h, body, err := c.recv(wait)
				took := time.Since(start)
				if err != nil || h.RequestID != 1 || h.Status != 0 {
					t.Fatalf("long poll: %+v %v", h, err)
				}
				if took > wait/2 { // woken by the produce, not by its 20 s wait
					t.Fatalf("long poll answered %v after the produce", took)
				}
				var resp netproto.ConsumeResponse
				if err := resp.Decode(body); err != nil {
					t.Fatal(err)
				}
				got, err := decodeBatches(resp.Batches)
				if err != nil || len(got) != 2 || got[0] != (message{1, "wake"}) || resp.End != 3 {
					t.Fatalf("long poll returned %v (%v), end %d", got, err, resp.End)
				}
				t.Logf("answered %v after the produce", took)
			})
		}
	}
}

// Promise: a long poll with nothing produced is answered with an empty
// response (BatchBytes 0, the current range) once its wait, capped by
// Options.MaxWait, is over.
func TestLongPollExpires(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, network, Options{AutoCreateTopics: true, MaxWait: 400 * time.Millisecond})
			p := mustDial(t, ts, "")
			p.mustProduce(t, "t", batchOf(t, "only"))
			for _, c := range []struct {
				ask, want time.Duration
			}{
				{200 * time.Millisecond, 200 * time.Millisecond},
				{time.Hour, 400 * time.Millisecond}, // capped by MaxWait
			} {
				start := time.Now()
				resp := p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("t"), Offset: 1, MaxWaitMillis: uint32(c.ask / time.Millisecond)})
				took := time.Since(start)
				if resp.BatchBytes != 0 || resp.Start != 0 || resp.End != 1 {
					t.Fatalf("expired poll: %+v", resp)
				}
				if took < c.want || took > c.want+3*time.Second {
					t.Fatalf("asked %v: answered after %v, want about %v", c.ask, took, c.want)
				}
			}
		})
	}
}

// Promise: with small segments (64 KiB) a consume that crosses segment
// boundaries returns whole, valid batches back to back, in offset order,
// in both consume modes; reading the topic response by response yields
// every message once.
func TestConsumeAcrossSegments(t *testing.T) {
	for _, network := range networks {
		for _, mode := range modes {
			t.Run(network+"/"+modeName(mode), func(t *testing.T) {
				e := openEngine(t, engine.Options{SegmentBytes: 64 << 10})
				ts := startServer(t, e, network, Options{AutoCreateTopics: true, ConsumeMode: mode})
				p := mustDial(t, ts, "")
				var want []message
				for i := range 60 {
					msgs := make([]string, 1+i%37)
					for j := range msgs {
						msgs[j] = fmt.Sprintf("%d.%d.%s", i, j, strings.Repeat("s", 100+i*7))
					}
					p.mustProduce(t, "t", batchOf(t, msgs...))
					for _, m := range msgs {
						want = append(want, message{uint64(len(want)), m})
					}
				}
				if info, err := e.Describe("t"); err != nil || info.Segments < 5 {
					t.Fatalf("want several segments: %+v %v", info, err)
				}
				var got []message
				crossed := false
				for off, n := uint64(0), 0; off < uint64(len(want)); n++ {
					if n > len(want) {
						t.Fatal("no progress")
					}
					resp := p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("t"), Offset: off, MaxBytes: 150 << 10})
					if resp.BatchBytes%record.Align != 0 || int(resp.BatchBytes) != len(resp.Batches) || resp.BatchBytes == 0 {
						t.Fatalf("at %d: BatchBytes %d", off, resp.BatchBytes)
					}
					crossed = crossed || resp.BatchBytes > 64<<10
					ms, err := decodeBatches(resp.Batches)
					if err != nil {
						t.Fatalf("at %d: %v", off, err)
					}
					if ms[0].off != off {
						t.Fatalf("response at %d starts at %d", off, ms[0].off)
					}
					got = append(got, ms...)
					off = ms[len(ms)-1].off + 1
				}
				if !crossed {
					t.Fatal("no response crossed a segment boundary")
				}
				if len(got) != len(want) {
					t.Fatalf("got %d messages, want %d", len(got), len(want))
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("message %d: got %v, want %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// Promise: a long poll on a topic that is deleted meanwhile is answered at
// once with TopicNotFound, not after its wait.
func TestLongPollTopicDeleted(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "unix", Options{AutoCreateTopics: true})
	p := mustDial(t, ts, "")
	p.mustProduce(t, "t", batchOf(t, "x"))
	c := mustDial(t, ts, "")
	c.mustSend(t, netproto.OpConsume, 1, &netproto.ConsumeRequest{Topic: []byte("t"), Offset: 1, MaxWaitMillis: 20000})
	if h, _, err := c.recv(100 * time.Millisecond); !isTimeout(err) {
		t.Fatalf("long poll answered before any change: %+v %v", h, err)
	}
	start := time.Now()
	p.mustCall(t, netproto.OpDeleteTopic, &netproto.DeleteTopicRequest{Topic: []byte("t")}, nil)
	h, _, err := c.recv(ioTimeout)
	if err != nil || h.RequestID != 1 || h.Status != netproto.CodeTopicNotFound {
		t.Fatalf("long poll after delete: %+v %v", h, err)
	}
	if took := time.Since(start); took > 10*time.Second { // not after its 20 s wait
		t.Fatalf("answered %v after the delete", took)
	}
}
