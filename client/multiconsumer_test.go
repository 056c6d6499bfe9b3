package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

type tagged struct {
	topic string
	off   uint64
	value string
	at    time.Time
}

// collect runs the iteration in a goroutine and sends what it yields.
func collect(ctx context.Context, seq func(func(client.Message, error) bool)) <-chan tagged {
	out := make(chan tagged, 1024)
	go func() {
		defer close(out)
		seq(func(m client.Message, err error) bool {
			tg := tagged{topic: m.Topic, off: m.Offset, value: string(m.Value), at: time.Now()}
			if err != nil {
				tg.value = "error: " + err.Error()
			}
			select {
			case out <- tg:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return out
}

func next(t *testing.T, ch <-chan tagged, within time.Duration) tagged {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("iteration ended")
		}
		return m
	case <-time.After(within):
		t.Fatalf("nothing within %v", within)
	}
	return tagged{}
}

// A consumer over a name pattern yields the messages of every matching
// topic tagged with the topic, none of the others, and follows a matching
// topic created after it started within a few listing intervals of the
// topic's first message.
func TestPatternConsumerPicksUpNewTopics(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
	c := b.dial()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	createTopic(t, c, "logs.a")
	createTopic(t, c, "metrics.a")
	for i := range 3 {
		if _, err := c.Produce(ctx, "logs.a", fmt.Appendf(nil, "a%d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Produce(ctx, "metrics.a", []byte("no")); err != nil {
			t.Fatal(err)
		}
	}
	mc := client.NewPatternConsumer(c, "logs.", "")
	ch := collect(ctx, mc.Messages(ctx))
	for i := range 3 {
		if m := next(t, ch, 5*time.Second); m.topic != "logs.a" || m.value != fmt.Sprint("a", i) || m.off != uint64(i) {
			t.Fatalf("got %+v", m)
		}
	}
	createTopic(t, c, "logs.b")
	sent := time.Now()
	if _, err := c.Produce(ctx, "logs.b", []byte("b0")); err != nil {
		t.Fatal(err)
	}
	m := next(t, ch, 10*time.Second)
	if m.topic != "logs.b" || m.value != "b0" {
		t.Fatalf("got %+v", m)
	}
	// Found by the listing every 250 ms: within a few intervals (the
	// margin is for a loaded machine), long before next's 10 s.
	if d := m.at.Sub(sent); d > 3*time.Second {
		t.Fatalf("new topic's message after %v", d)
	}
	// The watch brings new messages of followed topics.
	if _, err := c.Produce(ctx, "logs.a", []byte("a3")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, ch, 5*time.Second); m.topic != "logs.a" || m.value != "a3" || m.off != 3 {
		t.Fatalf("got %+v", m)
	}
	select {
	case m := <-ch:
		t.Fatalf("unexpected %+v", m)
	case <-time.After(300 * time.Millisecond):
	}
}

// A consumer over a list of topics yields the messages of each, tagged,
// and starts following a listed topic once it is created.
func TestListConsumer(t *testing.T) {
	b := startBroker(t, "unix", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
	c := b.dial()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	createTopic(t, c, "x")
	createTopic(t, c, "y")
	for i := range 5 {
		c.Produce(ctx, "x", fmt.Appendf(nil, "x%d", i))
		c.Produce(ctx, "y", fmt.Appendf(nil, "y%d", i))
	}
	mc := client.NewMultiConsumer(c, []string{"x", "y", "z"}, client.ConsumeLimit(2))
	ch := collect(ctx, mc.Messages(ctx))
	seen := map[string]uint64{}
	for range 10 {
		m := next(t, ch, 5*time.Second)
		if m.value != fmt.Sprintf("%s%d", m.topic, m.off) || m.off != seen[m.topic] {
			t.Fatalf("got %+v after %v", m, seen)
		}
		seen[m.topic]++
	}
	createTopic(t, c, "z")
	c.Produce(ctx, "z", []byte("z0"))
	if m := next(t, ch, 5*time.Second); m.topic != "z" || m.value != "z0" {
		t.Fatalf("got %+v", m)
	}
	cancel()
	for range ch {
	}
	if offs := mc.Offsets(); offs["x"] != 5 || offs["y"] != 5 || offs["z"] != 1 {
		t.Fatalf("offsets %v", offs)
	}
}

// A Consumer whose position fell below its topic's start (retention
// removed the messages) follows its reset policy: the default fails with
// ErrOffsetOutOfRange; earliest goes on at the start and counts what it
// skipped; latest goes on at the end.
func TestConsumerResetPolicy(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever, SegmentBytes: 4 << 10}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	createTopic(t, c, "r")
	produceN(t, c, "r", 2000, 10)
	start, err := c.TruncateBefore(ctx, "r", 1000)
	if err != nil || start == 0 {
		t.Fatalf("truncate: %d %v", start, err)
	}
	first := func(cs *client.Consumer) (client.Message, error) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for m, err := range cs.Messages(rctx) {
			return m, err
		}
		return client.Message{}, rctx.Err()
	}
	_, err = first(client.NewConsumer(c, "r", 0))
	var e *client.Error
	if !errors.As(err, &e) || !errors.Is(err, client.ErrOffsetOutOfRange) || e.Start != start {
		t.Fatalf("default policy: %v", err)
	}
	var resets [][3]uint64
	cs := client.NewConsumer(c, "r", 0, client.ConsumeReset(client.ResetEarliest),
		client.ConsumeOnReset(func(topic string, from, to uint64) { resets = append(resets, [3]uint64{0, from, to}) }))
	m, err := first(cs)
	if err != nil || m.Offset != start || cs.Skipped() != start || len(resets) != 1 || resets[0][2] != start {
		t.Fatalf("earliest: offset %d, %v, skipped %d, resets %v", m.Offset, err, cs.Skipped(), resets)
	}
	// "new" is produced once the consumer has reset to the end (from its
	// reset callback), not after a fixed sleep: on a loaded machine the
	// consumer's first read could come after it and skip it.
	cs = client.NewConsumer(c, "r", 0, client.ConsumeReset(client.ResetLatest), client.ConsumeWait(2*time.Second),
		client.ConsumeOnReset(func(string, uint64, uint64) {
			go c.Produce(ctx, "r", []byte("new"))
		}))
	m, err = first(cs)
	if err != nil || m.Offset != 2000 || string(m.Value) != "new" || cs.Skipped() != 2000 {
		t.Fatalf("latest: %d %q %v, skipped %d", m.Offset, m.Value, err, cs.Skipped())
	}
}

// A MultiConsumer applies its reset policy per topic (a topic truncated
// past its position goes on at the new start, the jump counted as
// skipped) and drops a topic that is deleted after yielding its error,
// while the other topics go on.
func TestMultiConsumerResetAndDelete(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever, SegmentBytes: 4 << 10}, server.Options{})
	c := b.dial()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	createTopic(t, c, "m.trunc")
	createTopic(t, c, "m.gone")
	createTopic(t, c, "m.keep")
	produceN(t, c, "m.trunc", 3000, 10)
	mc := client.NewPatternConsumer(c, "m.", "", client.ConsumeReset(client.ResetEarliest), client.ConsumeLimit(10))
	ch := collect(ctx, mc.Messages(ctx)) // holds 1,024, then the consumer waits
	first := next(t, ch, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	start, err := c.TruncateBefore(ctx, "m.trunc", 2500)
	if err != nil || start < 1500 {
		t.Fatalf("truncate: %d %v", start, err)
	}
	offs := []uint64{first.off}
	for offs[len(offs)-1] != 2999 {
		m := next(t, ch, 5*time.Second)
		if m.topic != "m.trunc" {
			t.Fatalf("got %+v", m)
		}
		offs = append(offs, m.off)
	}
	jumps := 0
	for i := 1; i < len(offs); i++ {
		if offs[i] != offs[i-1]+1 {
			jumps++
			if offs[i] != start || mc.Skipped() != offs[i]-offs[i-1]-1 {
				t.Fatalf("jump from %d to %d, start %d, skipped %d", offs[i-1], offs[i], start, mc.Skipped())
			}
		}
	}
	if jumps != 1 || offs[0] != 0 {
		t.Fatalf("%d jumps in offsets from %d", jumps, offs[0])
	}
	if err := c.DeleteTopic(ctx, "m.gone"); err != nil {
		t.Fatal(err)
	}
	c.Produce(ctx, "m.keep", []byte("k0"))
	sawGone, sawKeep := false, false
	for !sawGone || !sawKeep {
		m := next(t, ch, 5*time.Second)
		switch {
		case m.topic == "m.gone" && strings.Contains(m.value, "error"):
			sawGone = true
		case m.topic == "m.keep" && m.value == "k0":
			sawKeep = true
		default:
			t.Fatalf("got %+v", m)
		}
	}
	c.Produce(ctx, "m.keep", []byte("k1"))
	if m := next(t, ch, 5*time.Second); m.topic != "m.keep" || m.value != "k1" {
		t.Fatalf("got %+v", m)
	}
}
