package realclients

import (
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/kafka"
	"github.com/haraqa/haraqa/server"
)

var quiet = slog.New(slog.DiscardHandler)

// broker is an in-process haraqa broker serving both the native protocol
// and Kafka on loopback ports, restartable on the same directory and
// ports.
type broker struct {
	t          testing.TB
	dir        string
	kafkaAddr  string
	nativeAddr string
	e          *engine.Engine
	ks         *kafka.Server
	ns         *server.Server
	done       chan error
}

func startBroker(t testing.TB) *broker {
	t.Helper()
	b := &broker{t: t, dir: t.TempDir()}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *broker) start() {
	b.t.Helper()
	e, err := engine.Open(engine.Options{Dir: b.dir, Logger: quiet})
	if err != nil {
		b.t.Fatal(err)
	}
	kaddr, naddr := b.kafkaAddr, b.nativeAddr
	if kaddr == "" {
		kaddr, naddr = "127.0.0.1:0", "127.0.0.1:0"
	}
	var kl, nl net.Listener
	for i := 0; ; i++ { // a restart binds the same ports; the old ones may linger briefly
		if kl, err = net.Listen("tcp", kaddr); err == nil {
			if nl, err = net.Listen("tcp", naddr); err == nil {
				break
			}
			kl.Close()
		}
		if i == 50 {
			b.t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.kafkaAddr, b.nativeAddr = kl.Addr().String(), nl.Addr().String()
	b.e = e
	b.ks = kafka.New(e, kafka.Options{AutoCreateTopics: true, Logger: quiet})
	b.ns = server.New(e, server.Options{AutoCreateTopics: true, Logger: quiet})
	b.done = make(chan error, 2)
	go func() { b.done <- b.ks.Serve(kl) }()
	go func() { b.done <- b.ns.Serve(nl) }()
}

func (b *broker) stop() {
	if b.e == nil {
		return
	}
	b.ks.Close()
	b.ns.Close()
	for range 2 {
		if err := <-b.done; err != nil && !errors.Is(err, kafka.ErrServerClosed) && !errors.Is(err, server.ErrServerClosed) {
			b.t.Errorf("serve: %v", err)
		}
	}
	if err := b.e.Close(); err != nil {
		b.t.Errorf("engine close: %v", err)
	}
	b.e = nil
}

func (b *broker) restart() {
	b.stop()
	b.start()
}

// native dials the broker's native protocol with the Go client.
func (b *broker) native(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.Dial(t.Context(), "tcp://"+b.nativeAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
