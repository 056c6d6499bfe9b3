package prom_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/client/hooks/prom"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/internal/testbroker"
	"github.com/haraqa/haraqa/server"
)

// The Prometheus hook's counters equal what was sent and read: messages
// acknowledged per topic, the failed ones of a topic that does not exist,
// messages consumed, and one connection.
func TestCountersEqualMessagesSent(t *testing.T) {
	b := testbroker.Start(t, "tcp", engine.Options{Fsync: engine.FsyncNever, Logger: testbroker.Quiet}, server.Options{Logger: testbroker.Quiet})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	h, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, b.Addr, client.WithHooks(h))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := map[string]int{"a": 3000, "b": 1234, "c": 1}
	for topic := range sent {
		if err := c.CreateTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	p := client.NewMultiProducer(c, client.ProducerMaxMessages(500))
	for topic, n := range sent {
		for i := range n {
			if err := p.Send(ctx, topic, fmt.Appendf(nil, "%s-%d", topic, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 7 {
		p.Send(ctx, "nosuch", fmt.Appendf(nil, "lost-%d", i))
	}
	p.Close(ctx)
	var buf client.ConsumeBuffer
	for topic, n := range sent {
		for off := uint64(0); off < uint64(n); {
			msgs, err := c.Consume(ctx, topic, off, 0, &buf)
			if err != nil {
				t.Fatal(err)
			}
			off = msgs.Next()
		}
		if got := testutil.ToFloat64(h.Produced.WithLabelValues(topic)); got != float64(n) {
			t.Errorf("%s: produced counter %v, sent %d", topic, got, n)
		}
		if got := testutil.ToFloat64(h.Consumed.WithLabelValues(topic)); got != float64(n) {
			t.Errorf("%s: consumed counter %v, read %d", topic, got, n)
		}
	}
	if got := testutil.ToFloat64(h.ProduceFailed.WithLabelValues("nosuch")); got != 7 {
		t.Errorf("failed counter %v, want 7", got)
	}
	if got := testutil.ToFloat64(h.Connects.WithLabelValues("ok")); got != 1 {
		t.Errorf("connects %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "haraqa_client_request_duration_seconds"); err != nil || n == 0 {
		t.Errorf("request durations: %d series, %v", n, err)
	}
}
