//go:build unix

package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// seedList is the client seed list of every node.
func (c *procCluster) seedList() string {
	var as []string
	for _, p := range c.nodes {
		as = append(as, p.addr)
	}
	return "tcp://" + strings.Join(as, ",")
}

// waitLeaders waits until every topic is led by its preferred replica
// (where leadership settles), every live replica agreeing, and returns
// the leaders.
func (c *procCluster) waitLeaders(topics ...string) map[string]uint64 {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := map[string]uint64{}
		ok := true
		for _, topic := range topics {
			var lead uint64
			for _, p := range c.nodes {
				if !alive(p) {
					continue
				}
				g, err := topicStatus(p, topic)
				if err != nil || g.Leader == 0 || g.Leader != g.Preferred || lead != 0 && g.Leader != lead {
					ok = false
					break
				}
				lead = g.Leader
			}
			out[topic] = lead
		}
		if ok {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("topics %v have no agreed leader", topics)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitAddresses waits until node 1 knows every node's client address (the
// nodes announce them through the metadata group).
func (c *procCluster) waitAddresses(ctx context.Context) {
	c.t.Helper()
	for {
		cl, err := client.Dial(ctx, "tcp://"+c.nodes[0].addr)
		if err != nil {
			c.t.Fatal(err)
		}
		pl, err := cl.Placement(ctx)
		cl.Close()
		if err != nil {
			c.t.Fatal(err)
		}
		all := len(pl.Nodes) == len(c.nodes)
		for _, p := range c.nodes {
			all = all && pl.Nodes[p.id] != ""
		}
		if all {
			return
		}
		if ctx.Err() != nil {
			c.t.Fatalf("node addresses never all known: %+v", pl)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// produceCounts sums, over the live nodes, the produce batches each took
// for topic while leading it and while a follower (forwarded).
func (c *procCluster) produceCounts(topic string) (led map[uint64]uint64, forwarded uint64) {
	c.t.Helper()
	led = map[uint64]uint64{}
	for _, p := range c.nodes {
		if !alive(p) {
			continue
		}
		g, err := topicStatus(p, topic)
		if err != nil {
			c.t.Fatal(err)
		}
		led[p.id] = g.ProducesLed
		forwarded += g.ProducesForwarded
	}
	return led, forwarded
}

// A client given the cluster's seed list sends each topic's produces to
// the topic's leader: with three topics led by three different nodes, one
// client's produces are all taken by the leaders, none forwarded by a
// follower (a client on one node would have two thirds forwarded).
func TestClusterClientProducesToLeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3)
	topics := []string{"a", "b", "c"}
	for _, tp := range topics {
		c.createTopic(tp)
	}
	leads := c.waitLeaders(topics...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.waitAddresses(ctx)
	cl, err := client.Dial(ctx, c.seedList())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 50
	// A round counts only if no leader changed during it (an election on
	// a loaded machine is not the client's doing): up to 3 rounds.
	for round := 1; ; round++ {
		if round > 1 {
			leads = c.waitLeaders(topics...)
			time.Sleep(4 * time.Second) // the client's periodic look at the placement
		}
		terms := c.terms(topics...)
		before := map[string]map[uint64]uint64{}
		fwd0 := map[string]uint64{}
		for _, tp := range topics {
			before[tp], fwd0[tp] = c.produceCounts(tp)
		}
		for i := range n {
			for _, tp := range topics {
				if _, err := cl.Produce(ctx, tp, []byte(fmt.Sprintf("%s-%d", tp, i))); err != nil {
					t.Fatal(err)
				}
			}
		}
		if now := c.terms(topics...); fmt.Sprint(now) != fmt.Sprint(terms) {
			if round == 3 {
				t.Fatalf("leaders changed during every round (%v, then %v)", terms, now)
			}
			t.Logf("round %d: a leader changed (%v, then %v); measuring again", round, terms, now)
			continue
		}
		for _, tp := range topics {
			led, fwd := c.produceCounts(tp)
			if got := led[leads[tp]] - before[tp][leads[tp]]; fwd != fwd0[tp] || got != n {
				t.Errorf("topic %q (leader %d): %d produces taken by the leader, %d forwarded by followers; want all %d by the leader", tp, leads[tp], got, fwd-fwd0[tp], n)
			}
		}
		break
	}
	if !t.Failed() {
		t.Logf("leaders %v: every produce taken by its topic's leader", leads)
	}
}

// terms returns each topic's leader and term as the live nodes report
// them.
func (c *procCluster) terms(topics ...string) map[string][2]uint64 {
	out := map[string][2]uint64{}
	for _, tp := range topics {
		l, term := c.leaderOf(tp)
		out[tp] = [2]uint64{l, term}
	}
	return out
}

// leaderWindow waits for acks more acknowledgements of l and returns the
// produces topic's leader took meanwhile and those followers forwarded;
// stable is false when the leader or its term changed meanwhile.
func (c *procCluster) leaderWindow(l *load, topic string, acks int) (lead, led, fwd uint64, stable bool) {
	c.t.Helper()
	lead, term := c.leaderOf(topic)
	led0, fwd0 := c.produceCounts(topic)
	deadline := time.Now().Add(60 * time.Second)
	for start := l.count(); l.count() < start+acks; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("only %d of %d acknowledged", l.count()-start, acks)
		}
	}
	led1, fwd1 := c.produceCounts(topic)
	lead2, term2 := c.leaderOf(topic)
	return lead, led1[lead] - led0[lead], fwd1 - fwd0, lead2 == lead && term2 == term
}

// One client given the seed list keeps producing while the topic's leader
// is killed (SIGKILL): it moves to the new leader by itself (no new Dial),
// whose produces are then taken by the new leader and none forwarded, and
// no acknowledged message is lost.
func TestClusterClientFollowsLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3)
	c.createTopic("t")
	old := c.waitLeaders("t")["t"]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, c.seedList())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	l := &load{acked: map[uint64]string{}, stop: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			msg := fmt.Sprintf("m%d", i)
			pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
			off, err := cl.Produce(pctx, "t", []byte(msg))
			pcancel()
			l.mu.Lock()
			if err != nil {
				l.errs++
			} else {
				if prev, ok := l.acked[off]; ok {
					l.dup = append(l.dup, fmt.Sprintf("offset %d acked for %q and %q", off, prev, msg))
				}
				l.acked[off] = msg
			}
			l.mu.Unlock()
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	waitAcks := func(n int, what string) {
		t.Helper()
		for start := l.count(); l.count() < start+n; time.Sleep(10 * time.Millisecond) {
			if ctx.Err() != nil {
				t.Fatalf("%s: only %d acknowledged", what, l.count()-start)
			}
		}
	}
	waitAcks(20, "at the start")
	// Each measured window counts only if the leader and its term held
	// during it (a spontaneous election on a loaded machine is not the
	// client's doing): up to 3 windows.
	measure := func(what string) uint64 {
		t.Helper()
		for w := 1; ; w++ {
			lead, led, fwd, stable := c.leaderWindow(l, "t", 100)
			if !stable {
				if w == 3 {
					t.Fatalf("%s: the leader changed during every window", what)
				}
				time.Sleep(4 * time.Second) // the client's periodic look at the placement
				continue
			}
			if fwd != 0 || led < 100 {
				t.Fatalf("%s: leader %d took %d produces and followers forwarded %d: the client does not produce to the leader", what, lead, led, fwd)
			}
			return lead
		}
	}
	if lead := measure("before the kill"); lead != old {
		old = lead
	}
	c.kill(c.byID(old))
	var lead uint64
	for lead == 0 || lead == old {
		if ctx.Err() != nil {
			t.Fatal("no new leader")
		}
		time.Sleep(50 * time.Millisecond)
		lead, _ = c.leaderOf("t")
	}
	waitAcks(50, "after the kill")
	// Give the client its periodic look at the placement, then measure.
	time.Sleep(4 * time.Second)
	lead = measure("on the new leader")
	close(l.stop)
	l.wg.Wait()
	c.start(c.byID(old))
	logs := c.converge("t", l.count())
	c.check(l, logs)
	t.Logf("leader %d killed, client moved to %d: %d messages acknowledged, %d produce errors (retried)", old, lead, len(l.acked), l.errs)
}
