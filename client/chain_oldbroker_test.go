package client_test

import (
	"io"
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

// oldBrokerProxy relays a client's connection to a broker, but answers a
// ConsumeNext as a broker that does not know it does, in the order such a
// broker answers when the requests before it need no wait: their answers
// first (it relays them, waiting up to 10 s), then UnknownOpcode for
// the ConsumeNext, then the connection closes as the broker closes it:
// half-closed, what the client still sends read and dropped for a while,
// then closed.
func oldBrokerProxy(t *testing.T, target string, refused *atomic.Int64) string {
	return refusingProxy(t, target, refused, true)
}

// refusingProxy is oldBrokerProxy, or with answersFirst false
// refuseNextProxy. Frames are relayed whole, so that a refusal is never
// written inside another answer.
func refusingProxy(t *testing.T, target string, refused *atomic.Int64, answersFirst bool) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	_, addr := splitAddr(target)
	go func() {
		for {
			cc, err := l.Accept()
			if err != nil {
				return
			}
			bc, err := net.Dial("tcp", addr)
			if err != nil {
				cc.Close()
				continue
			}
			var mu sync.Mutex // cc's writes; open counts requests not answered yet
			open := 0
			go func() {
				defer cc.Close()
				var buf []byte
				for {
					h, body, err := netproto.ReadResponse(bc, netproto.DefaultMaxBody, buf)
					if err != nil {
						return
					}
					buf = body[:0]
					mu.Lock()
					open--
					_, err = cc.Write(netproto.AppendFrame(nil, h, rawBody(body)))
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer bc.Close()
				var buf []byte
				for {
					h, body, err := netproto.ReadRequest(cc, netproto.DefaultMaxBody, buf)
					if err != nil {
						cc.Close()
						return
					}
					buf = body[:0]
					if h.Opcode == netproto.OpConsumeNext {
						refused.Add(1)
						for deadline := time.Now().Add(10 * time.Second); answersFirst && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
							mu.Lock()
							o := open
							mu.Unlock()
							if o <= 0 {
								break
							}
						}
						mu.Lock()
						cc.Write(netproto.AppendErrorFrame(nil, h.Opcode, h.RequestID, netproto.NewError(netproto.CodeUnknownOpcode, "unknown opcode")))
						cc.(*net.TCPConn).CloseWrite()
						mu.Unlock()
						cc.SetReadDeadline(time.Now().Add(30 * time.Second)) // until the client closes
						io.Copy(io.Discard, cc)
						cc.Close()
						return
					}
					mu.Lock()
					open++
					mu.Unlock()
					if _, err := bc.Write(netproto.AppendFrame(nil, h, rawBody(body))); err != nil {
						cc.Close()
						return
					}
				}
			}()
		}
	}()
	return "tcp://" + l.Addr().String()
}

// A Consumer that takes two messages per Messages loop at the end of a
// topic (the second read of a loop has a ConsumeNext behind it, given up
// when the loop breaks), against a broker that does not know ConsumeNext
// (it answers UnknownOpcode and closes the connection): the refusal of the
// ConsumeNext the Consumer had given up still tells the Client, which
// sends no more of them, and the next read, which the closed connection
// fails, is read again on a new one instead of failing the loop. Before,
// the refusal of a dropped request was discarded unread, so the Consumer
// sent another ConsumeNext in every loop and the broker closed the
// connection each time, failing whatever else the Client had in flight
// on it. Every message is yielded once, in order, and no error.
func TestConsumerOldBrokerRefusalOfDroppedNext(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	var refused atomic.Int64
	var h countOps
	c := b.dialAt(oldBrokerProxy(t, b.Addr, &refused), client.WithHooks(&h), client.WithReconnect(time.Millisecond, 10*time.Millisecond))
	prod := b.dial()
	ctx := testCtx(t)
	createTopic(t, prod, "old1")
	cs := client.NewConsumer(c, "old1", 0, client.ConsumeWait(10*time.Second))
	const n = 24
	for i := 0; i < n; i += 2 {
		if _, err := prod.Produce(ctx, "old1", payload(i)); err != nil {
			t.Fatal(err)
		}
		want := i
		for m, err := range cs.Messages(ctx) {
			if err != nil {
				t.Fatalf("at message %d: %v", want, err)
			}
			if m.Offset != uint64(want) || string(m.Value) != string(payload(want)) {
				t.Fatalf("message %d: offset %d, %q", want, m.Offset, m.Value)
			}
			if want++; want == i+2 {
				break
			}
			if _, err := prod.Produce(ctx, "old1", payload(want)); err != nil {
				t.Fatal(err)
			}
		}
		if want != i+2 {
			t.Fatalf("loop from %d yielded up to %d", i, want)
		}
	}
	if r := refused.Load(); r != 1 {
		t.Fatalf("the broker refused %d ConsumeNext (%d written) over %d loops, want 1", r, h.nexts.Load(), n/2)
	}
}
