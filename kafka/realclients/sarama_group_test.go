package realclients

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// groupHandler consumes until it has want messages, marking each, then
// commits and cancels the session.
type groupHandler struct {
	want   int
	got    []int64
	cancel context.CancelFunc
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.got = append(h.got, m.Offset)
		s.MarkMessage(m, "")
		if len(h.got) == h.want {
			s.Commit()
			h.cancel()
			return nil
		}
	}
	return nil
}

// Promise: a sarama consumer group reads, marks and commits; a new
// session of the same group resumes from the commit.
func TestSaramaGroupCommit(t *testing.T) {
	b := startBroker(t)
	p, err := sarama.NewSyncProducer([]string{b.kafkaAddr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 30 {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "sg", Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(want int) []int64 {
		cfg := saramaConfig()
		cfg.Consumer.Offsets.AutoCommit.Enable = false
		cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
		g, err := sarama.NewConsumerGroup([]string{b.kafkaAddr}, "sgroup", cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		h := &groupHandler{want: want, cancel: cancel}
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{"sg"}, h); err != nil && ctx.Err() == nil {
				t.Fatal(err)
			}
		}
		if len(h.got) != want {
			t.Fatalf("got %d of %d", len(h.got), want)
		}
		return h.got
	}
	if got := run(10); got[0] != 0 || got[9] != 9 {
		t.Fatalf("first session read %v", got)
	}
	if info, err := b.e.DescribeGroup("sg", "sgroup"); err != nil || info.Committed != 10 {
		t.Fatalf("haraqa group: %+v %v", info, err)
	}
	if got := run(5); got[0] != 10 {
		t.Fatalf("second session started at %d, want 10", got[0])
	}
}
