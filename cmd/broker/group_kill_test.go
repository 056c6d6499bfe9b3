package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// groupLedger is what the members of TestKill9GroupAcks saw, across every
// broker process.
type groupLedger struct {
	mu        sync.Mutex
	produced  map[uint64]string // acknowledged produces: offset → value
	delivered map[uint64]int    // deliveries per offset
	confirmed map[uint64]int    // kill cycle in which an ack of the offset was confirmed
	attempted map[uint64]bool   // an ack was sent, confirmed or not
	violation []string
}

func (l *groupLedger) deliver(off uint64, val string, cycle int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.delivered[off]++
	if want, ok := l.produced[off]; ok && want != val {
		l.violation = append(l.violation, fmt.Sprintf("cycle %d: offset %d delivered as %q, produced as %q", cycle, off, val, want))
	}
	if c, ok := l.confirmed[off]; ok {
		l.violation = append(l.violation, fmt.Sprintf("cycle %d: offset %d delivered again after its ack was confirmed in cycle %d", cycle, off, c))
	}
}

// TestKill9GroupAcks holds consumer groups to their durability promise
// across process crashes, over the real protocol: the broker binary is
// killed with SIGKILL at a random moment, at least 50 times, while a
// producer appends and three members of one group fetch and ack. A
// confirmed ack is never undone: no message whose ack was confirmed is
// delivered again after any restart. Nothing is skipped: after the last
// restart the members drain the group and every produced message has been
// acked at least once. Redeliveries of messages whose ack was not
// confirmed (the kill came first) are the duplicates at-least-once allows;
// the test counts and reports them.
func TestKill9GroupAcks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the broker binary; skipped in -short")
	}
	cycles := 50
	if v, err := strconv.Atoi(os.Getenv("HARAQA_KILL_LOOPS")); err == nil && v > cycles {
		cycles = v
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d, %d kill cycles", seed, cycles)
	rng := rand.New(rand.NewSource(seed))
	bin := buildBroker(t)
	dir := t.TempDir()
	l := &groupLedger{produced: map[uint64]string{}, delivered: map[uint64]int{}, confirmed: map[uint64]int{}, attempted: map[uint64]bool{}}
	started := time.Now()
	for cycle := 0; cycle < cycles; cycle++ {
		p := startBroker(t, bin, dir)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(4)
		go func() {
			defer wg.Done()
			groupProducer(ctx, p.sock, cycle, l)
		}()
		for m := range 3 {
			go func() {
				defer wg.Done()
				groupMember(ctx, p.sock, cycle, m, l, false)
			}()
		}
		time.Sleep(time.Duration(50+rng.Intn(200)) * time.Millisecond) // the kill point
		p.cmd.Process.Kill()
		p.cmd.Wait()
		cancel()
		wg.Wait()
	}
	killed := time.Since(started)

	// Drain: a last broker, not killed; the members ack what is left.
	p := startBroker(t, bin, dir)
	defer func() { p.cmd.Process.Kill(); p.cmd.Wait() }()
	// The drain's bound is generous: under -race on a loaded machine a
	// durable ack per message is slow, and a drain cut short would leave
	// messages unacked that no group is done with.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	drainStart := time.Now()
	var wg sync.WaitGroup
	for m := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			groupMember(ctx, p.sock, cycles, m, l, true)
		}()
	}
	wg.Wait()
	drained := time.Since(drainStart)

	// The group must be done before what it holds done is judged: a drain
	// that ran out of time is reported as that, not as skipped messages.
	dc, err := client.Dial(context.Background(), "unix://"+p.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	d, err := dc.DescribeGroup(context.Background(), "workers", "jobs")
	if err != nil || d.Lag != 0 || d.InFlight != 0 || d.Committed != d.End {
		t.Fatalf("after the drain (%v) the group is not done: %+v %v", drained.Round(time.Millisecond), d, err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.violation {
		t.Error(v)
	}
	// Every produced message was acked: confirmed, or sent when a kill cut
	// the answer off (the broker had stored it: the drain did not get the
	// message again). One that was never even sent an ack yet counts as
	// done would be a group moved forward past an unacked message.
	unacked, unconfirmed := 0, 0
	for off := range l.produced {
		if _, ok := l.confirmed[off]; ok {
			continue
		}
		if l.attempted[off] {
			unconfirmed++
			continue
		}
		unacked++
		if unacked <= 5 {
			t.Errorf("produced offset %d was never acked, yet the group is done with it (delivered %d times)", off, l.delivered[off])
		}
	}
	if unacked > 0 {
		t.Fatalf("%d of %d produced messages never acked\n%s", unacked, len(l.produced), p.logText())
	}
	dups, dupAttempted := 0, 0
	for off, n := range l.delivered {
		if n > 1 {
			dups += n - 1
			if l.attempted[off] {
				dupAttempted++
			}
		}
	}
	if len(l.produced) == 0 || len(l.confirmed) == 0 {
		t.Fatal("nothing was produced or acked")
	}
	t.Logf("drained in %v", drained.Round(time.Millisecond))
	t.Logf("%d kill cycles in %v: %d messages produced, all acked (%d confirmed, %d acks cut off by a kill but stored); %d redeliveries (duplicates), %d of the redelivered offsets had an ack sent that the kill left unconfirmed",
		cycles, killed.Round(time.Millisecond), len(l.produced), len(l.confirmed), unconfirmed, dups, dupAttempted)
}

// groupProducer appends batches of 20 messages until ctx ends or the
// broker dies, recording the acknowledged ones.
func groupProducer(ctx context.Context, sock string, cycle int, l *groupLedger) {
	c, err := client.Dial(ctx, "unix://"+sock, client.WithReconnect(-1, 0))
	if err != nil {
		return
	}
	defer c.Close()
	for n := 0; ctx.Err() == nil && n < 100000; n++ {
		vals := make([][]byte, 20)
		for i := range vals {
			vals[i] = fmt.Appendf(nil, "c%d-n%d-i%d", cycle, n, i)
		}
		base, err := c.Produce(ctx, "jobs", vals...)
		if err != nil {
			return // the broker died under us: not acknowledged
		}
		l.mu.Lock()
		for i, v := range vals {
			l.produced[base+uint64(i)] = string(v)
		}
		l.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

// groupMember consumes the group and acks each message, one ack per
// message, recording deliveries and confirmed acks. With drain it goes on
// until every produced message is acked (or ctx ends).
func groupMember(ctx context.Context, sock string, cycle, member int, l *groupLedger, drain bool) {
	c, err := client.Dial(ctx, "unix://"+sock, client.WithReconnect(-1, 0))
	if err != nil {
		return
	}
	defer c.Close()
	c.CreateTopic(ctx, "jobs") // the first cycle's; later ones get TopicExists
	opts := []client.GroupOption{client.GroupFetchMax(50), client.GroupWait(50 * time.Millisecond), client.GroupMemberName(fmt.Sprint("m", member))}
	if drain {
		opts = append(opts, client.GroupUntilIdle())
	}
	gc := client.NewGroupConsumer(c, "workers", "jobs", opts...)
	for ctx.Err() == nil {
		for m, err := range gc.Messages(ctx) {
			if err != nil {
				if !client.IsRetriable(err) {
					return
				}
				continue
			}
			l.deliver(m.Offset, string(m.Value), cycle)
			l.mu.Lock()
			l.attempted[m.Offset] = true
			l.mu.Unlock()
			if err := m.Ack(); err != nil {
				if drain && ctx.Err() == nil {
					l.mu.Lock()
					l.violation = append(l.violation, fmt.Sprintf("drain: ack of %d: %v", m.Offset, err))
					l.mu.Unlock()
				}
				continue
			}
			l.mu.Lock()
			if _, ok := l.confirmed[m.Offset]; !ok {
				l.confirmed[m.Offset] = cycle
			}
			l.mu.Unlock()
		}
		if !drain || groupDone(ctx, c) {
			return
		}
	}
}

// groupDone reports whether the group has nothing left: no lag, nothing in
// flight.
func groupDone(ctx context.Context, c *client.Client) bool {
	d, err := c.DescribeGroup(ctx, "workers", "jobs")
	return err == nil && d.Lag == 0 && d.InFlight == 0
}
