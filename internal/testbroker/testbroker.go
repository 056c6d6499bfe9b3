// Package testbroker runs a broker in the test's own process: an engine
// behind a server on a loopback TCP port or a Unix socket, stopped when the
// test ends. The client, hrq and bench tests use it instead of building
// the same setup by hand. (The server's own tests are in package server
// and keep their raw-socket helpers: importing this package from there
// would be an import cycle.)
package testbroker

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/server"
)

// Broker is an in-process broker for tests.
type Broker struct {
	// Addr is where it listens, in the form client.Dial takes:
	// tcp://127.0.0.1:port or unix:///path. It stays the same across
	// Restart.
	Addr string
	// EngineOptions and ServerOptions are what it was started with (Dir
	// filled in).
	EngineOptions engine.Options
	ServerOptions server.Options
	// Engine and Server are the running ones; nil while stopped.
	Engine *engine.Engine
	Server *server.Server

	t    testing.TB
	done chan error // Serve's result
}

// Quiet is a logger that drops everything; Start uses it for an options
// struct that sets no logger.
var Quiet = slog.New(slog.DiscardHandler)

// Start starts a broker on network ("tcp" or "unix") and stops it when the
// test ends (see Stop; the engine's Close error is left to a test that
// calls Stop itself). Zero options work: Dir defaults to a fresh
// t.TempDir(), loggers to Quiet.
func Start(t testing.TB, network string, eopts engine.Options, sopts server.Options) *Broker {
	t.Helper()
	if eopts.Dir == "" && len(eopts.Volumes) == 0 {
		eopts.Dir = t.TempDir()
	}
	if eopts.Logger == nil {
		eopts.Logger = Quiet
	}
	if sopts.Logger == nil {
		sopts.Logger = Quiet
	}
	b := &Broker{t: t, EngineOptions: eopts, ServerOptions: sopts}
	switch network {
	case "tcp":
		b.Addr = "tcp://127.0.0.1:0"
	case "unix":
		b.Addr = "unix://" + SocketPath(t)
	default:
		t.Fatalf("testbroker: network %q, want tcp or unix", network)
	}
	b.start()
	t.Cleanup(func() { b.Stop() })
	return b
}

// SocketPath returns a socket path in t.TempDir(), or in a shorter
// temporary directory when that one is too long for a socket address.
func SocketPath(t testing.TB) string {
	t.Helper()
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

func (b *Broker) start() {
	b.t.Helper()
	e, err := engine.Open(b.EngineOptions)
	if err != nil {
		b.t.Fatal(err)
	}
	l, err := server.Listen(b.Addr)
	if err != nil {
		e.Close()
		b.t.Fatal(err)
	}
	if network, _, _ := netproto.ParseAddr(b.Addr); network == "tcp" {
		b.Addr = "tcp://" + l.Addr().String() // fix the port for restarts
	}
	b.Engine, b.Server, b.done = e, server.New(e, b.ServerOptions), make(chan error, 1)
	go func() { b.done <- b.Server.Serve(l) }()
}

// Stop closes the server (connections are cut), waits for Serve, which
// must return ErrServerClosed (else the test fails), then closes the
// engine and returns what its Close returned. Stopping a stopped broker
// does nothing.
func (b *Broker) Stop() error {
	if b.Server == nil {
		return nil
	}
	b.Server.Close()
	if err := <-b.done; !errors.Is(err, server.ErrServerClosed) {
		b.t.Errorf("testbroker: serve: %v", err)
	}
	// Shutdown waits for the connection goroutines that Close ended.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.Server.Shutdown(ctx)
	err := b.Engine.Close()
	b.Server, b.Engine = nil, nil
	return err
}

// Start starts a stopped broker again on the same address and data
// directory.
func (b *Broker) Start() {
	b.t.Helper()
	b.start()
}

// Restart stops the broker and starts a new one on the same address and
// data directory.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.start()
}
