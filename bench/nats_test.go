package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startNATS embeds a NATS server with JetStream in this process, file
// storage in a temporary directory, listening on a free loopback port.
// relaxed keeps JetStream's default sync (every 2 minutes); durable sets
// sync_interval always (SyncAlways: fsync after every message).
func startNATS(b *testing.B, t tier) broker {
	opts := &natsserver.Options{
		ServerName: "bench",
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   dataDir(b, "nats"),
		SyncAlways: t == durable,
		MaxPayload: 8 << 20, // W3's 1 MiB messages pass the 1 MB default with headers
		NoLog:      true,
		NoSigs:     true,
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		b.Fatal("nats: server not ready in 10s")
	}
	b.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return &natsBroker{url: ns.ClientURL()}
}

type natsBroker struct{ url string }

func (n *natsBroker) Dial(ctx context.Context) (session, error) {
	nc, err := nats.Connect(n.url, nats.Timeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &natsSession{nc: nc, js: js}, nil
}

type natsSession struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func (s *natsSession) Close() error { s.nc.Close(); return nil }

// CreateTopic creates a stream of the topic's name holding the subject of
// the same name, file storage, one replica.
func (s *natsSession) CreateTopic(ctx context.Context, topic string) error {
	_, err := s.js.CreateStream(ctx, jetstream.StreamConfig{Name: topic, Subjects: []string{topic},
		Storage: jetstream.FileStorage, Replicas: 1})
	return err
}

func (s *natsSession) DeleteTopic(ctx context.Context, topic string) error {
	return s.js.DeleteStream(ctx, topic)
}

// firstErr keeps the first error reported to it.
type firstErr struct {
	mu  sync.Mutex
	err error
}

func (f *firstErr) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *firstErr) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Produce publishes asynchronously with at most depth*batchLen(size)
// publishes awaiting their ack (PublishAsync blocks beyond that), then
// waits for every ack. Each message has its own buffer: PublishAsync keeps
// it until the ack, for retries.
func (s *natsSession) Produce(ctx context.Context, topic string, src *idSource, size, depth int, g *gen) error {
	var fail firstErr
	js, err := jetstream.New(s.nc,
		jetstream.WithPublishAsyncMaxPending(depth*batchLen(size)),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { fail.set(err) }))
	if err != nil {
		return err
	}
	stall := jetstream.WithStallWait(time.Minute)
	for {
		first, k := src.take(batchLen(size))
		if k == 0 {
			break
		}
		for i := range k {
			data := make([]byte, size)
			g.fill(data, first+uint64(i))
			if _, err := js.PublishAsync(topic, data, stall); err != nil {
				return fmt.Errorf("nats publish: %w", err)
			}
		}
		if err := fail.get(); err != nil {
			return fmt.Errorf("nats publish: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := fail.get(); err != nil {
		return fmt.Errorf("nats publish: %w", err)
	}
	return nil
}

// Read uses an ordered consumer (no acks) buffering up to 16 MiB.
func (s *natsSession) Read(ctx context.Context, topic string, n, size int, each func([]byte) error) error {
	cons, err := s.js.OrderedConsumer(ctx, topic, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxBytes(readBytes))
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for got := 0; got < n; got++ {
		m, err := it.Next()
		if err != nil {
			return fmt.Errorf("nats read after %d of %d messages: %w", got, n, errors.Join(err, ctx.Err()))
		}
		if err := each(m.Data()); err != nil {
			return err
		}
	}
	return nil
}

func (s *natsSession) Len(ctx context.Context, topic string) (int, error) {
	st, err := s.js.Stream(ctx, topic)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int(info.State.Msgs), nil
}

func (s *natsSession) Send(ctx context.Context, topic string, msg []byte) error {
	_, err := s.js.Publish(ctx, topic, msg)
	return err
}

// Async is PublishAsync with a copy of each message.
func (s *natsSession) Async(ctx context.Context, topic string) (asyncSender, error) {
	a := &natsAsync{topic: topic}
	js, err := jetstream.New(s.nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { a.fail.set(err) }))
	a.js = js
	return a, err
}

type natsAsync struct {
	js    jetstream.JetStream
	topic string
	fail  firstErr
}

func (a *natsAsync) Send(ctx context.Context, msg []byte) error {
	_, err := a.js.PublishAsync(a.topic, bytes.Clone(msg))
	return err
}

func (a *natsAsync) Flush(ctx context.Context) error {
	select {
	case <-a.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	return a.fail.get()
}

func (a *natsAsync) Close(ctx context.Context) error { return a.Flush(ctx) }

// Follow is an ordered consumer's Consume callback (pull requests kept
// ahead by the client library).
func (s *natsSession) Follow(ctx context.Context, topic string, each func([]byte) bool) error {
	cons, err := s.js.OrderedConsumer(ctx, topic, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	finished := false
	var fail firstErr
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if finished {
			return
		}
		if !each(m.Data()) {
			finished = true
			close(done)
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { fail.set(err) }))
	if err != nil {
		return err
	}
	defer cc.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.Join(ctx.Err(), fail.get())
	}
}
