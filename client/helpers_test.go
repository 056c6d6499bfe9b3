package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/server"
)

// broker is an in-process broker for tests: an engine on a temporary
// directory behind a server on a TCP or Unix listener.
type broker struct {
	t     testing.TB
	addr  string // tcp://127.0.0.1:port or unix:///path
	eopts engine.Options
	sopts server.Options
	e     *engine.Engine
	s     *server.Server
	done  chan error
}

var quiet = slog.New(slog.DiscardHandler)

// startBroker starts a broker on network ("tcp" or "unix"). Zero options
// work; Dir defaults to a fresh t.TempDir().
func startBroker(t testing.TB, network string, eopts engine.Options, sopts server.Options) *broker {
	t.Helper()
	if eopts.Dir == "" {
		eopts.Dir = t.TempDir()
	}
	eopts.Logger, sopts.Logger = quiet, quiet
	b := &broker{t: t, eopts: eopts, sopts: sopts}
	switch network {
	case "tcp":
		b.addr = "tcp://127.0.0.1:0"
	case "unix":
		b.addr = "unix://" + socketPath(t)
	default:
		t.Fatalf("network %q", network)
	}
	b.start()
	t.Cleanup(b.stop)
	return b
}

// socketPath returns a socket path in t.TempDir(), or in a shorter
// temporary directory when that one is too long for a socket address.
func socketPath(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "haraqa.sock")
	if len(p) < 100 {
		return p
	}
	dir, err := os.MkdirTemp("", "hq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "haraqa.sock")
}

func (b *broker) start() {
	b.t.Helper()
	e, err := engine.Open(b.eopts)
	if err != nil {
		b.t.Fatal(err)
	}
	l, err := server.Listen(b.addr)
	if err != nil {
		e.Close()
		b.t.Fatal(err)
	}
	if network, _ := splitAddr(b.addr); network == "tcp" {
		b.addr = "tcp://" + l.Addr().String() // fix the port for restarts
	}
	b.e, b.s, b.done = e, server.New(e, b.sopts), make(chan error, 1)
	go func() { b.done <- b.s.Serve(l) }()
}

// stop closes the server, waits for Serve and closes the engine.
func (b *broker) stop() {
	if b.s == nil {
		return
	}
	b.s.Close()
	if err := <-b.done; !errors.Is(err, server.ErrServerClosed) {
		b.t.Errorf("serve: %v", err)
	}
	// Close waits for connections to end, which Close forces; give them
	// the time, then close the engine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.s.Shutdown(ctx)
	b.e.Close()
	b.s, b.e = nil, nil
}

// restart stops the broker and starts a new one on the same address and
// data directory.
func (b *broker) restart() {
	b.t.Helper()
	b.stop()
	b.start()
}

func splitAddr(addr string) (string, string) { n, a, _ := netproto.ParseAddr(addr); return n, a }

// dial connects a client that the test closes at its end.
func (b *broker) dial(opts ...client.Option) *client.Client {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, b.addr, opts...)
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
