package server

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/netproto"
)

// countingService is a log service that is not the engine: it counts the
// produces and reads that pass through it.
type countingService struct {
	logsvc.Service
	enqueues, reads atomic.Int64
}

func (s *countingService) Enqueue(ctx context.Context, topic string, batch []byte) (engine.Pending, error) {
	s.enqueues.Add(1)
	return s.Service.Enqueue(ctx, topic, batch)
}

func (s *countingService) EnqueueDirect(ctx context.Context, topic string, batch []byte) (engine.Pending, error) {
	s.enqueues.Add(1)
	return s.Service.EnqueueDirect(ctx, topic, batch)
}

func (s *countingService) Read(topic string, offset, limit uint64, maxBytes int64, res *engine.ReadResult) error {
	s.reads.Add(1)
	return s.Service.Read(topic, offset, limit, maxBytes, res)
}

// Promise: the server reaches the log only through the log-service
// interface, so another implementation (a replicated log, a wrapper) can
// stand behind the same protocol: produces and consumes served by a
// NewService server go through the service it was given.
func TestServerUsesLogService(t *testing.T) {
	e := openEngine(t, engine.Options{})
	svc := &countingService{Service: e}
	l := listen(t, "tcp")
	s := NewService(svc, Options{Logger: quietLogger(), AutoCreateTopics: true})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		<-served
	})
	ts := &testServer{Server: s, e: e, network: "tcp", addr: l.Addr().String(), served: served}
	p := mustDial(t, ts, "")
	resp := p.mustProduce(t, "svc", batchOf(t, "a", "b"))
	if resp.BaseOffset != 0 {
		t.Fatalf("produce: base %d, want 0", resp.BaseOffset)
	}
	got := p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("svc"), Offset: 0, Limit: 2, MaxBytes: 1 << 20})
	msgs, err := decodeBatches(got.Batches)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("consume: %d messages, %v; want 2", len(msgs), err)
	}
	if svc.enqueues.Load() == 0 || svc.reads.Load() == 0 {
		t.Fatalf("service saw %d enqueues and %d reads; want the server to go through it", svc.enqueues.Load(), svc.reads.Load())
	}
}
