package server

import (
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/topicname"
)

// Promise: bad input gets a clear error, never a panic. A Consume or
// ConsumeNext whose body does not decode, sent as the first consume of a
// connection (no link kept yet), is refused with Malformed and the broker
// goes on serving other connections.
func TestConsumeBodyMalformedFirst(t *testing.T) {
	for _, op := range []netproto.Opcode{netproto.OpConsume, netproto.OpConsumeNext} {
		t.Run(op.String(), func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true})
			other := mustDial(t, ts, "")
			other.mustProduce(t, "t", batchOf(t, "m0"))
			p := mustDial(t, ts, "")
			p.mustWrite(t, netproto.AppendFrame(nil, netproto.Header{Opcode: op, RequestID: 5}, rawBody{1, 2, 3}))
			expectRefused(t, p, netproto.CodeMalformed)
			other.mustProduce(t, "t", batchOf(t, "m1"))
		})
	}
}

// rawBody encodes as the bytes it holds.
type rawBody []byte

func (b rawBody) AppendTo(dst []byte) []byte { return append(dst, b...) }

// Promise: no hang on bad input. A request id may be used again only once
// the request it named was answered; a client that sends a ConsumeNext
// under the id of the consume it follows (After = its own id), or a
// Consume under the id of one still waiting that a ConsumeNext follows,
// does not leave that ConsumeNext waiting for an answer that never comes
// (holding an in-flight slot until the connection ends): it is answered
// once the consume it follows is.
func TestConsumeNextIDReusedInFlight(t *testing.T) {
	topic := []byte("t")
	for _, tc := range []struct {
		name    string
		answers int // the consumes' and the ConsumeNext's
		send    func(t *testing.T, p *peer)
	}{
		{"after its own id", 2, func(t *testing.T, p *peer) {
			p.mustSend(t, netproto.OpConsume, 1, &netproto.ConsumeRequest{Topic: topic, Offset: 1, MaxWaitMillis: 3_600_000})
			p.mustSend(t, netproto.OpConsumeNext, 1, &netproto.ConsumeNextRequest{Topic: topic, After: 1})
		}},
		{"consume under a followed id", 3, func(t *testing.T, p *peer) {
			p.mustSend(t, netproto.OpConsume, 1, &netproto.ConsumeRequest{Topic: topic, Offset: 1, MaxWaitMillis: 3_600_000})
			p.mustSend(t, netproto.OpConsumeNext, 2, &netproto.ConsumeNextRequest{Topic: topic, After: 1})
			p.mustSend(t, netproto.OpConsume, 1, &netproto.ConsumeRequest{Topic: topic, Offset: 1, MaxWaitMillis: 3_600_000})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true, MaxWait: time.Hour})
			prod := mustDial(t, ts, "")
			prod.mustProduce(t, "t", batchOf(t, "m0"))
			p := mustDial(t, ts, "")
			tc.send(t, p)
			if h, _, err := p.recv(100 * time.Millisecond); !isTimeout(err) {
				t.Fatalf("answered before any data: %+v %v", h, err)
			}
			prod.mustProduce(t, "t", batchOf(t, "m1"))
			// Every consume at the end gets m1; the ConsumeNext (MaxWait
			// 0) reads on from 2 and gets an empty answer at once.
			nexts := 0
			for range tc.answers {
				h, body, err := p.recv(10 * time.Second)
				if err != nil {
					t.Fatalf("%d ConsumeNext answered, then: %v", nexts, err)
				}
				if h.Status != netproto.CodeOK {
					t.Fatalf("%+v: %v", h, netproto.DecodeError(h.Status, body))
				}
				var resp netproto.ConsumeResponse
				if err := resp.Decode(body); err != nil {
					t.Fatal(err)
				}
				got, err := decodeBatches(resp.Batches)
				if err != nil {
					t.Fatal(err)
				}
				switch h.Opcode {
				case netproto.OpConsume:
					if len(got) != 1 || got[0] != (message{1, "m1"}) {
						t.Fatalf("consume %d returned %v", h.RequestID, got)
					}
				case netproto.OpConsumeNext:
					if len(got) != 0 || resp.End != 2 {
						t.Fatalf("consume-next %d returned %v, end %d; want nothing from 2", h.RequestID, got, resp.End)
					}
					nexts++
				}
			}
			if nexts != 1 {
				t.Fatalf("%d answers to the ConsumeNext", nexts)
			}
			p.mustProduce(t, "t", batchOf(t, "still open"))
		})
	}
}

// linkTopicBytes sums the topic bytes the server's connections keep for
// the consumes a ConsumeNext may follow.
func linkTopicBytes(ts *testServer) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
	for c := range ts.conns {
		c.links.mu.Lock()
		for _, l := range c.links.list {
			n += len(l.topic)
		}
		c.links.mu.Unlock()
	}
	return n
}

// Promise: no unbounded memory from bad input. A consume names a topic
// of up to 65,535 bytes on the wire, though no name longer than
// topicname.MaxLen exists: a connection does not keep such a name after
// the consume is refused (BadTopicName) for a ConsumeNext to follow, so
// what it keeps for its recent consumes stays within its links times
// topicname.MaxLen bytes, not 72 times 64 KiB.
func TestConsumeLinksKeepNoLongTopic(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true})
	p := mustDial(t, ts, "")
	const n = 80
	long := make([]byte, 60_000)
	for i := range n {
		for j := range long {
			long[j] = 'a' + byte((i+j)%26)
		}
		_, err := p.consume(netproto.ConsumeRequest{Topic: long})
		wantCode(t, err, netproto.CodeBadTopicName)
		// A ConsumeNext behind it is refused too, clearly.
		_, err = p.call(netproto.OpConsumeNext, &netproto.ConsumeNextRequest{Topic: long, After: p.next})
		if code := netproto.CodeOf(err); code != netproto.CodeBadTopicName && code != netproto.CodeMalformed {
			t.Fatalf("consume-next behind a refused long topic: %v", err)
		}
	}
	if kept, bound := linkTopicBytes(ts), (Options{}.withDefaults().MaxInFlight+extraLinks)*topicname.MaxLen; kept > bound {
		t.Fatalf("the connection keeps %d topic bytes for its recent consumes, more than %d", kept, bound)
	}
	p.mustProduce(t, "t", batchOf(t, "still open"))
}
