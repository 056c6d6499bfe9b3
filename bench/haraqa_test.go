package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"

	"testing"
)

// haraqaBroker is a haraqa broker at addr (tcp://… or unix://…).
type haraqaBroker struct {
	addr string
	pid  int    // of the broker process; 0 in process
	pids []int  // of a cluster's broker processes (BenchmarkR3)
	stop func() // stops the broker process (nil in process); also run at the end
}

func policy(t tier) engine.FsyncPolicy {
	if t == durable {
		return engine.FsyncAlways
	}
	return engine.FsyncNever
}

// inProcess starts the broker in this process: engine.Open and
// server.New with their defaults but the fsync policy, on a loopback TCP
// port or a Unix socket.
func inProcess(network string) func(b *testing.B, t tier) broker {
	return func(b *testing.B, t tier) broker {
		quiet := slog.New(slog.DiscardHandler)
		e, err := engine.Open(engine.Options{Dir: dataDir(b, "haraqa"), Fsync: policy(t), Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		addr := "tcp://127.0.0.1:0"
		if network == "unix" {
			addr = "unix://" + socketPath(b)
		}
		l, err := server.Listen(addr)
		if err != nil {
			e.Close()
			b.Fatal(err)
		}
		if network == "tcp" {
			addr = "tcp://" + l.Addr().String()
		}
		srv := server.New(e, server.Options{AutoCreateTopics: true, Logger: quiet})
		done := make(chan error, 1)
		go func() { done <- srv.Serve(l) }()
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				b.Errorf("haraqa shutdown: %v", err)
			}
			if err := <-done; !errors.Is(err, server.ErrServerClosed) {
				b.Errorf("haraqa serve: %v", err)
			}
			if err := e.Close(); err != nil {
				b.Errorf("haraqa engine close: %v", err)
			}
		})
		return &haraqaBroker{addr: addr}
	}
}

func (h *haraqaBroker) Dial(ctx context.Context) (session, error) {
	c, err := client.Dial(ctx, h.addr)
	if err != nil {
		return nil, err
	}
	return &haraqaSession{c: c}, nil
}

type haraqaSession struct {
	c *client.Client
}

func (s *haraqaSession) Close() error { return s.c.Close() }

func (s *haraqaSession) CreateTopic(ctx context.Context, topic string) error {
	return s.c.CreateTopic(ctx, topic)
}

func (s *haraqaSession) DeleteTopic(ctx context.Context, topic string) error {
	return s.c.DeleteTopic(ctx, topic)
}

// Produce: depth goroutines share the one connection, each building
// batches of batchLen(size) messages with Client.Produce (which copies the
// messages into a pooled batch) and waiting for the ack.
func (s *haraqaSession) Produce(ctx context.Context, topic string, src *idSource, size, depth int, g *gen) error {
	n := batchLen(size)
	return parallel(ctx, depth, func(ctx context.Context, _ int) error {
		slab := make([]byte, n*size)
		msgs := make([][]byte, n)
		for i := range msgs {
			msgs[i] = slab[i*size : (i+1)*size]
		}
		for {
			first, k := src.take(n)
			if k == 0 {
				return nil
			}
			for i := range k {
				g.fill(msgs[i], first+uint64(i))
			}
			if _, err := s.c.Produce(ctx, topic, msgs[:k]...); err != nil {
				return fmt.Errorf("haraqa produce: %w", err)
			}
		}
	})
}

// Read consumes from offset 0 with a 16 MiB byte budget per request
// through a client.Consumer, which has the next response in flight while
// the current one is read (the client still verifies every batch). A topic
// holding fewer than n messages fails at once (the Consumer would wait for
// more).
func (s *haraqaSession) Read(ctx context.Context, topic string, n, size int, each func([]byte) error) error {
	start, end, err := s.c.Offsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("haraqa offsets: %w", err)
	}
	if start != 0 || end < uint64(n) {
		return fmt.Errorf("haraqa consume: topic holds [%d, %d), want %d messages from 0", start, end, n)
	}
	if n == 0 {
		return nil
	}
	cs := client.NewConsumer(s.c, topic, 0, client.ConsumeMaxBytes(readBytes), client.ConsumeLimit(n))
	got := 0
	for m, err := range cs.Messages(ctx) {
		if err != nil {
			return fmt.Errorf("haraqa consume at %d: %w", cs.Offset(), err)
		}
		if err := each(m.Value); err != nil {
			return err
		}
		if got++; got == n {
			return nil
		}
	}
	return fmt.Errorf("haraqa consume: %d of %d messages: %w", got, n, ctx.Err())
}

func (s *haraqaSession) Len(ctx context.Context, topic string) (int, error) {
	start, end, err := s.c.Offsets(ctx, topic)
	return int(end - start), err
}

func (s *haraqaSession) Send(ctx context.Context, topic string, msg []byte) error {
	_, err := s.c.Produce(ctx, topic, msg)
	return err
}

// Async is a client.Producer with linger 0 and up to 8 batches in flight
// (the idempotent Producer's most; it keeps their order): a message goes
// out at once, without waiting for the acks of those before it. With the
// default of one batch in flight, most W6 messages waited for the ack of
// the one before (bench/README.md "Profiles").
func (s *haraqaSession) Async(ctx context.Context, topic string) (asyncSender, error) {
	return haraqaAsync{client.NewProducer(s.c, topic, client.ProducerLinger(0), client.ProducerMaxInFlight(8))}, nil
}

type haraqaAsync struct{ p *client.Producer }

func (a haraqaAsync) Send(ctx context.Context, msg []byte) error { return a.p.Send(ctx, msg) }
func (a haraqaAsync) Flush(ctx context.Context) error            { return a.p.Flush(ctx) }
func (a haraqaAsync) Close(ctx context.Context) error            { return a.p.Close(ctx) }

// Follow is a client.Consumer: long polls at the end of the topic.
func (s *haraqaSession) Follow(ctx context.Context, topic string, each func([]byte) bool) error {
	cs := client.NewConsumer(s.c, topic, 0, client.ConsumeWait(time.Second))
	for m, err := range cs.Messages(ctx) {
		if err != nil {
			return fmt.Errorf("haraqa follow: %w", err)
		}
		if !each(m.Value) {
			return nil
		}
	}
	return ctx.Err()
}
