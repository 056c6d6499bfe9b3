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
						for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
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

// A Consumer that takes one message per Messages loop at the end of a
// topic, against a broker that does not know ConsumeNext (it answers
// UnknownOpcode and closes the connection): the refusal of a ConsumeNext
// the Consumer had already given up (the loop broke while it waited
// ahead) still tells the Client, which sends no more of them. Before, the
// refusal of a dropped request was discarded unread, so every other loop
// sent another ConsumeNext and the broker closed the connection again,
// failing whatever else the Client had in flight on it. Every message is
// yielded once, in order.
func TestConsumerOldBrokerRefusalOfDroppedNext(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	var refused atomic.Int64
	var h countOps
	c := b.dialAt(oldBrokerProxy(t, b.Addr, &refused), client.WithHooks(&h), client.WithReconnect(time.Millisecond, 10*time.Millisecond))
	prod := b.dial()
	ctx := testCtx(t)
	createTopic(t, prod, "old1")
	cs := client.NewConsumer(c, "old1", 0, client.ConsumeWait(10*time.Second))
	const n = 12
	for i := range n {
		if _, err := prod.Produce(ctx, "old1", payload(i)); err != nil {
			t.Fatal(err)
		}
		got := 0
		for m, err := range cs.Messages(ctx) {
			if err != nil {
				t.Fatalf("at message %d: %v", i, err)
			}
			if m.Offset != uint64(i) || string(m.Value) != string(payload(i)) {
				t.Fatalf("message %d: offset %d, %q", i, m.Offset, m.Value)
			}
			got++
			break
		}
		if got != 1 {
			t.Fatalf("message %d not yielded", i)
		}
	}
	if r := refused.Load(); r != 1 {
		t.Fatalf("the broker refused %d ConsumeNext (%d written) over %d loops, want 1", r, h.nexts.Load(), n)
	}
}
