package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/internal/testbroker"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/server"
)

// broker is the in-process test broker (internal/testbroker) with the
// client tests' helpers.
type broker struct {
	*testbroker.Broker
	t testing.TB
}

var quiet = testbroker.Quiet

// startBroker starts a broker on network ("tcp" or "unix"). Zero options
// work; Dir defaults to a fresh t.TempDir(). Logs are dropped.
func startBroker(t testing.TB, network string, eopts engine.Options, sopts server.Options) *broker {
	t.Helper()
	eopts.Logger, sopts.Logger = quiet, quiet
	return &broker{Broker: testbroker.Start(t, network, eopts, sopts), t: t}
}

// socketPath returns a socket path short enough for a socket address.
func socketPath(t testing.TB) string { return testbroker.SocketPath(t) }

// stop stops the broker (see testbroker.Broker.Stop).
func (b *broker) stop() { b.Stop() }

// start starts a stopped broker again.
func (b *broker) start() { b.Broker.Start() }

// restart stops the broker and starts a new one on the same address and
// data directory.
func (b *broker) restart() { b.Restart() }

func splitAddr(addr string) (string, string) { n, a, _ := netproto.ParseAddr(addr); return n, a }

// dial connects a client that the test closes at its end.
func (b *broker) dial(opts ...client.Option) *client.Client {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, b.Addr, opts...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}

// networks runs f once over TCP and once over a Unix socket.
func networks(t *testing.T, eopts engine.Options, sopts server.Options, f func(t *testing.T, b *broker)) {
	for _, n := range []string{"tcp", "unix"} {
		t.Run(n, func(t *testing.T) { f(t, startBroker(t, n, eopts, sopts)) })
	}
}

// testCtx returns a context that ends with the test or after a minute.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// payload is the content of message i in tests: recognisable and of
// varying length.
func payload(i int) []byte {
	return fmt.Appendf(nil, "message %d %s", i, make([]byte, i%17))
}

func createTopic(t testing.TB, c *client.Client, topic string) {
	t.Helper()
	if err := c.CreateTopic(testCtx(t), topic); err != nil {
		t.Fatal(err)
	}
}

// dialAt connects a client to addr (a proxy in front of the broker) that
// the test closes at its end.
func (b *broker) dialAt(addr string, opts ...client.Option) *client.Client {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, opts...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}
