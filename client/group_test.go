package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

// produceGroupN produces n messages "m<i>" to topic in batches of 100.
func produceGroupN(t testing.TB, c *client.Client, topic string, n int) {
	t.Helper()
	ctx := testCtx(t)
	for i := 0; i < n; i += 100 {
		var vals [][]byte
		for j := i; j < min(i+100, n); j++ {
			vals = append(vals, fmt.Appendf(nil, "m%d", j))
		}
		if _, err := c.Produce(ctx, topic, vals...); err != nil {
			t.Fatal(err)
		}
	}
}

// groupAckLog counts, per offset, the deliveries seen and the acks confirmed.
type groupAckLog struct {
	mu        sync.Mutex
	delivered map[uint64]int
	acked     map[uint64]int
}

func newGroupAckLog() *groupAckLog {
	return &groupAckLog{delivered: map[uint64]int{}, acked: map[uint64]int{}}
}

func (l *groupAckLog) deliver(off uint64) {
	l.mu.Lock()
	l.delivered[off]++
	l.mu.Unlock()
}

func (l *groupAckLog) ack(off uint64) {
	l.mu.Lock()
	l.acked[off]++
	l.mu.Unlock()
}

func (l *groupAckLog) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// TestGroupSharedAckedExactlyOnce: four members of one group share a topic
// through the real client and server; with no member failing, every
// message is delivered and acked exactly once, and the union of what the
// members got is exactly the topic.
func TestGroupSharedAckedExactlyOnce(t *testing.T) {
	t.Run("acks one by one", func(t *testing.T) { testGroupShared(t, "unix", 2000, nil) })
	t.Run("batched acks", func(t *testing.T) {
		testGroupShared(t, "tcp", 20000, []client.GroupOption{client.GroupAckBatch(500, 10*time.Millisecond)})
	})
}

func testGroupShared(t *testing.T, network string, n int, opts []client.GroupOption) {
	const members = 4
	{
		b := startBroker(t, network, engine.Options{}, server.Options{})
		c := b.dial()
		createTopic(t, c, "work")
		produceGroupN(t, c, "work", n)
		log := newGroupAckLog()
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		var wg sync.WaitGroup
		var perMember [members]atomic.Int64
		errs := make(chan error, members)
		for i := range members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mc := b.dial()
				gc := client.NewGroupConsumer(mc, "workers", "work", append(opts, client.GroupFetchMax(200), client.GroupWait(100*time.Millisecond))...)
				for m, err := range gc.Messages(ctx) {
					if err != nil {
						errs <- err
						return
					}
					if m.Topic != "work" {
						errs <- fmt.Errorf("offset %d: Topic %q", m.Offset, m.Topic)
						return
					}
					if want := fmt.Sprintf("m%d", m.Offset); string(m.Value) != want {
						errs <- fmt.Errorf("offset %d holds %q, want %q", m.Offset, m.Value, want)
						return
					}
					log.deliver(m.Offset)
					if err := m.Ack(); err != nil {
						errs <- fmt.Errorf("ack %d: %w", m.Offset, err)
						return
					}
					log.ack(m.Offset)
					perMember[i].Add(1)
					if log.ackedCount() == n {
						cancel()
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for off := range uint64(n) {
			if log.delivered[off] != 1 || log.acked[off] != 1 {
				t.Fatalf("offset %d delivered %d times, acked %d times", off, log.delivered[off], log.acked[off])
			}
		}
		if len(log.delivered) != n {
			t.Fatalf("%d offsets delivered, the topic has %d", len(log.delivered), n)
		}
		for i := range members {
			t.Logf("member %d acked %d", i, perMember[i].Load())
		}
		d, err := c.DescribeGroup(testCtx(t), "workers", "work")
		if err != nil {
			t.Fatal(err)
		}
		if d.Committed != uint64(n) || d.Lag != 0 || d.InFlight != 0 {
			t.Fatalf("describe after all acks: committed %d lag %d in flight %d", d.Committed, d.Lag, d.InFlight)
		}
	}
}

// TestGroupBatchedAcks: with GroupAckBatch and GroupAutoAck the messages
// are acked by the consumer after the loop body, in batches, and the
// batches are confirmed by the time the iteration ends: the group's
// committed offset is the topic's end.
func TestGroupBatchedAcks(t *testing.T) {
	const n = 5000
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	c := b.dial()
	createTopic(t, c, "work")
	produceGroupN(t, c, "work", n)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	gc := client.NewGroupConsumer(c, "g", "work", client.GroupAutoAck(), client.GroupAckBatch(300, 20*time.Millisecond), client.GroupWait(50*time.Millisecond))
	seen := 0
	for m, err := range gc.Messages(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if m.Offset != uint64(seen) {
			t.Fatalf("got offset %d, want %d", m.Offset, seen)
		}
		seen++
		if seen == n {
			break
		}
	}
	// The loop broke on the last message, which is therefore not acked.
	d, err := c.DescribeGroup(testCtx(t), "g", "work")
	if err != nil {
		t.Fatal(err)
	}
	if d.Committed != n-1 {
		t.Fatalf("committed %d after the iteration, want %d (every message but the one the loop broke on)", d.Committed, n-1)
	}
	if err := gc.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if d, err = c.DescribeGroup(testCtx(t), "g", "work"); err != nil || d.InFlight != 0 || len(d.Members) != 0 {
		t.Fatalf("after Close: in flight %d, members %d, %v", d.InFlight, len(d.Members), err)
	}
	_ = errors.New
}

// TestGroupDeadMemberRedelivered: a member that takes messages and dies
// without acking them (its loop ends, it never acks or leaves) holds them
// only for the ack-wait: then they are delivered to the other members,
// nothing is lost, and the dead member's late ack is refused.
func TestGroupDeadMemberRedelivered(t *testing.T) {
	const n, ackWait = 3000, 2 * time.Second
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	c := b.dial()
	createTopic(t, c, "work")
	produceGroupN(t, c, "work", n)
	opts := []client.GroupOption{client.GroupAckWait(ackWait), client.GroupWait(100 * time.Millisecond), client.GroupFetchMax(100)}
	live := append(opts, client.GroupFetchMax(10))

	// The member that dies: it takes one fetch and stops.
	dead := client.NewGroupConsumer(b.dial(), "g", "work", opts...)
	var held []client.GroupMessage
	deadCtx, deadCancel := context.WithCancel(testCtx(t))
	// Its leases run from its fetch, after this (taking the 100 messages
	// can take a while on a loaded machine).
	fetchedFrom := time.Now()
	for m, err := range dead.Messages(deadCtx) {
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, m)
		if len(held) == 100 {
			break
		}
	}
	deadCancel()
	heldSet := map[uint64]bool{}
	for _, m := range held {
		heldSet[m.Offset] = true
	}

	log := newGroupAckLog()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstRedelivery time.Duration
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gc := client.NewGroupConsumer(b.dial(), "g", "work", live...)
			for m, err := range gc.Messages(ctx) {
				if err != nil {
					errs <- err
					return
				}
				log.deliver(m.Offset)
				if heldSet[m.Offset] {
					mu.Lock()
					if firstRedelivery == 0 {
						firstRedelivery = time.Since(fetchedFrom)
					}
					mu.Unlock()
					if m.Deliveries < 2 {
						errs <- fmt.Errorf("offset %d redelivered with delivery count %d", m.Offset, m.Deliveries)
						return
					}
				}
				if err := m.Ack(); errors.Is(err, client.ErrNotLeased) {
					continue // a slow machine: its lease lapsed, it comes again
				} else if err != nil {
					errs <- err
					return
				}
				log.ack(m.Offset)
				if log.ackedCount() == n {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for off := range uint64(n) {
		if log.acked[off] != 1 {
			t.Fatalf("offset %d acked %d times by the live members", off, log.acked[off])
		}
	}
	if firstRedelivery < ackWait {
		t.Fatalf("the dead member's messages were redelivered %v after its fetch, before the ack-wait of %v", firstRedelivery, ackWait)
	}
	t.Logf("dead member's %d messages redelivered from %v after its fetch (ack-wait %v)", len(held), firstRedelivery, ackWait)
	if err := held[0].Ack(); !errors.Is(err, client.ErrNotLeased) && !errors.Is(err, client.ErrStaleMember) {
		t.Fatalf("late ack of the dead member: %v, want ErrNotLeased or ErrStaleMember", err)
	}
}

// TestGroupExclusiveTakeover: in an exclusive group one member gets the
// messages strictly in order; when it dies (stops calling), a standby
// takes over within the ack-wait plus a few seconds, goes on in order from the
// first message not acked, and the dead member's ack is refused.
func TestGroupExclusiveTakeover(t *testing.T) {
	// The holder acks a fetch of 50 one by one within the ack-wait: 5 s, as
	// a starved test process (race detector, loaded machine) took over 2 s.
	const n, ackWait, dieAfter = 1000, 5 * time.Second, 300
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	c := b.dial()
	createTopic(t, c, "work")
	produceGroupN(t, c, "work", n)
	opts := []client.GroupOption{client.GroupExclusive(), client.GroupAckWait(ackWait), client.GroupWait(100 * time.Millisecond), client.GroupFetchMax(50)}

	first := client.NewGroupConsumer(b.dial(), "g", "work", opts...)
	var next uint64
	var lastCall time.Time
	var unacked client.GroupMessage
	for m, err := range first.Messages(testCtx(t)) {
		if err != nil {
			t.Fatal(err)
		}
		if m.Offset != next {
			t.Fatalf("holder got offset %d, want %d: not in order", m.Offset, next)
		}
		if next == dieAfter {
			unacked = m
			lastCall = time.Now()
			break // dies holding the rest of its fetch
		}
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		next++
	}

	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	standby := client.NewGroupConsumer(b.dial(), "g", "work", opts...)
	var tookOver time.Duration
	for m, err := range standby.Messages(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if tookOver == 0 {
			tookOver = time.Since(lastCall)
		}
		if m.Offset != next {
			t.Fatalf("the member that took over got offset %d, want %d: not in order", m.Offset, next)
		}
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		next++
		if next == n {
			break
		}
	}
	t.Logf("standby took over %v after the holder's last call (ack-wait %v)", tookOver, ackWait)
	if tookOver > ackWait+3*time.Second {
		t.Fatalf("takeover after %v, more than the ack-wait %v + 3s", tookOver, ackWait)
	}
	if err := unacked.Ack(); !errors.Is(err, client.ErrStaleMember) {
		t.Fatalf("ack of the old holder after the takeover: %v, want ErrStaleMember", err)
	}
	d, err := c.DescribeGroup(testCtx(t), "g", "work")
	if err != nil || d.Committed != n {
		t.Fatalf("committed %d, %v; want %d", d.Committed, err, n)
	}
}

// TestGroupOptions: the member options reach the broker and do what they
// say. InProgress keeps a message leased past the ack-wait; after
// GroupMaxDeliveries deliveries without an ack a message goes to the
// GroupDeadLetter topic instead of coming again; GroupStart places a new
// group (latest: only later messages; an offset); a member whose options
// differ from the group's is refused with ErrGroupConfigMismatch.
func TestGroupOptions(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	for _, topic := range []string{"work", "dead"} {
		createTopic(t, c, topic)
	}
	produceGroupN(t, c, "work", 10)

	t.Run("in progress", func(t *testing.T) {
		// A second: the extends every quarter of it keep a margin that
		// a loaded machine's scheduling delays do not eat up.
		const ackWait = time.Second
		gc := client.NewGroupConsumer(c, "slow", "work", client.GroupAckWait(ackWait), client.GroupFetchMax(1), client.GroupWait(50*time.Millisecond))
		for m, err := range gc.Messages(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			for range 8 { // two ack-waits of work, extended every quarter of one
				time.Sleep(ackWait / 4)
				if err := m.InProgress(); err != nil {
					t.Fatalf("InProgress: %v", err)
				}
			}
			if err := m.Ack(); err != nil {
				t.Fatalf("ack after working past the ack-wait with InProgress: %v", err)
			}
			break
		}
		if d, err := c.DescribeGroup(ctx, "slow", "work"); err != nil || d.Redeliveries != 0 || d.Committed != 1 {
			t.Fatalf("after an extended lease: %+v %v", d, err)
		}
	})

	t.Run("dead letter", func(t *testing.T) {
		gc := client.NewGroupConsumer(c, "picky", "work", client.GroupMaxDeliveries(2), client.GroupDeadLetter("dead"),
			client.GroupWait(50*time.Millisecond), client.GroupUntilIdle())
		acked := 0
		for m, err := range gc.Messages(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if m.Offset == 3 {
				m.Nack(0) // never processed: delivered twice, then dead-lettered
				continue
			}
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
			acked++
		}
		d, err := c.DescribeGroup(ctx, "picky", "work")
		if err != nil || acked != 9 || d.DeadLettered != 1 || d.Committed != 10 || d.MaxDeliveries != 2 || d.DeadLetter != "dead" {
			t.Fatalf("acked %d; %+v %v", acked, d, err)
		}
		msgs, err := c.Consume(ctx, "dead", 0, 10, nil)
		if err != nil || msgs.Len() != 1 || string(msgs.At(0).Value) != "m3" {
			t.Fatalf("dead-letter topic: %v %v", msgs, err)
		}
	})

	t.Run("start", func(t *testing.T) {
		latest := client.NewGroupConsumer(c, "late", "work", client.GroupStart(client.GroupLatest()), client.GroupWait(50*time.Millisecond))
		at := client.NewGroupConsumer(c, "at7", "work", client.GroupStart(client.GroupOffset(7)), client.GroupWait(50*time.Millisecond), client.GroupUntilIdle())
		var got []uint64
		for m, err := range at.Messages(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, m.Offset)
			m.Ack()
		}
		if fmt.Sprint(got) != "[7 8 9]" {
			t.Fatalf("group started at offset 7 got %v", got)
		}
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		joined := make(chan struct{})
		go func() {
			for !groupExists(c, "late") {
				time.Sleep(10 * time.Millisecond)
			}
			close(joined)
		}()
		first := make(chan uint64, 1)
		go func() {
			for m, err := range latest.Messages(lctx) {
				if err == nil {
					first <- m.Offset
					return
				}
			}
		}()
		<-joined
		produceGroupN(t, c, "work", 1) // offset 10
		select {
		case off := <-first:
			if off != 10 {
				t.Fatalf("group started at latest got offset %d first, want 10", off)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("group started at latest got nothing")
		}
	})

	t.Run("config mismatch", func(t *testing.T) {
		gc := client.NewGroupConsumer(c, "picky", "work", client.GroupExclusive())
		for _, err := range gc.Messages(ctx) {
			if !errors.Is(err, client.ErrGroupConfigMismatch) {
				t.Fatalf("exclusive member of a shared group: %v, want ErrGroupConfigMismatch", err)
			}
			break
		}
	})
}

func groupExists(c *client.Client, group string) bool {
	_, err := c.DescribeGroup(context.Background(), group, "work")
	return err == nil
}
