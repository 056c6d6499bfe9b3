//go:build unix

package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// dialNode connects to node p alone.
func dialNode(t *testing.T, p *proc) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, "tcp://"+p.addr)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// waitLeader waits for a leader of topic among the live nodes.
func (c *procCluster) waitLeader(topic string) *proc {
	c.t.Helper()
	for wait := time.Now().Add(30 * time.Second); ; {
		if lead, _ := c.leaderOf(topic); lead != 0 && alive(c.byID(lead)) {
			return c.byID(lead)
		}
		if time.Now().After(wait) {
			c.t.Fatalf("no leader for %q", topic)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCommitted waits until every live node's copy of the group has
// committed want.
func (c *procCluster) waitCommitted(topic, group string, want uint64) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got []string
		ok := true
		for _, p := range c.nodes {
			if !alive(p) {
				continue
			}
			cl := dialNode(c.t, p)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			d, err := cl.DescribeGroup(ctx, group, topic)
			cancel()
			cl.Close()
			if err != nil || d.Committed != want {
				ok = false
			}
			got = append(got, fmt.Sprintf("node %d: %d %v", p.id, d.Committed, err))
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("group %q: want committed %d on every replica, got %v", group, want, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaseHolder returns the live node whose copy of group shows messages in
// flight (leases live in the coordinator's memory only), or the topic's
// leader when none does (a leader that stepped down dropped its leases).
func (c *procCluster) leaseHolder(topic, group string) *proc {
	c.t.Helper()
	for _, p := range c.nodes {
		if !alive(p) {
			continue
		}
		cl := dialNode(c.t, p)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d, err := cl.DescribeGroup(ctx, group, topic)
		cancel()
		cl.Close()
		if err == nil && d.InFlight > 0 {
			return p
		}
	}
	return c.waitLeader(topic)
}

// groupKillLeader has a group consumer ack part of the topic on its
// leader, lease more without acking, and kills the leader with SIGKILL,
// cycles times; the group then finishes the topic on the last leader.
// seeds: the consumer's client is given every node and follows the
// leader by itself; else it is connected to the leader the test finds.
func groupKillLeader(t *testing.T, cycles int, budget time.Duration, seeds bool) {
	c := startProcCluster(t, 3)
	c.createTopic("t")
	const total = 120 * 4
	perCycle := total / (cycles + 2)
	{
		cl := dialNode(t, c.nodes[0])
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		for i := range total {
			if _, err := cl.Produce(ctx, "t", fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
		cancel()
		cl.Close()
	}
	var seedClient *client.Client
	if seeds {
		var addrs []string
		for _, p := range c.nodes {
			addrs = append(addrs, p.addr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cl, err := client.Dial(ctx, "tcp://"+strings.Join(addrs, ","), client.WithReconnect(20*time.Millisecond, 500*time.Millisecond))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		seedClient = cl
	}
	acked := map[uint64]bool{} // confirmed acks
	var redelivered []uint64
	deadline := time.Now().Add(budget)
	// consume acks ackLeft messages (all, untilIdle) through node p and
	// leases leaseLeft more without acking them; it returns false when
	// the node stopped coordinating the group (leadership moved back to
	// the preferred node, say): the caller goes on through the leader.
	consume := func(p *proc, ackLeft, leaseLeft *int, untilIdle bool) bool {
		cl := seedClient
		if !seeds {
			cl = dialNode(t, p)
			defer cl.Close()
		}
		opts := []client.GroupOption{client.GroupFetchMax(10), client.GroupWait(300 * time.Millisecond)}
		if untilIdle {
			opts = append(opts, client.GroupUntilIdle())
		}
		gc := client.NewGroupConsumer(cl, "g", "t", opts...)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		fails := 0
		for m, err := range gc.Messages(ctx) {
			if err != nil {
				if fails++; fails >= 4 && !seeds {
					t.Logf("node %d: %v; going to the leader", p.id, err)
					return false
				}
				continue // retriable: not coordinating yet, say
			}
			fails = 0
			if acked[m.Offset] {
				redelivered = append(redelivered, m.Offset)
			}
			if *ackLeft > 0 || untilIdle {
				if err := m.Ack(); err != nil {
					if seeds {
						continue // not confirmed: it comes again
					}
					t.Logf("node %d: ack of %d: %v; going to the leader", p.id, m.Offset, err)
					return false
				}
				acked[m.Offset] = true
				*ackLeft--
				continue
			}
			*leaseLeft-- // leased, never acked: must come again after the failover
			if *leaseLeft <= 0 {
				return true
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("node %d: group consumer timed out", p.id)
		}
		return true
	}
	done := 0
	for ; done < cycles && time.Now().Before(deadline); done++ {
		ackLeft, leaseLeft := perCycle, 5
		lead := c.waitLeader("t")
		for !consume(lead, &ackLeft, &leaseLeft, false) {
			lead = c.waitLeader("t")
		}
		// Every replica holds the acks: the same committed offset.
		var committed uint64
		for committed < total && acked[committed] {
			committed++
		}
		c.waitCommitted("t", "g", committed)
		// Kill the node holding the leases. The consumer's client follows
		// the leader, and leadership may have moved since the cycle
		// began (the preferred-leader balance after a restart): killing
		// the node found then would leave the leases with a live leader
		// for the whole ack-wait.
		victim := c.leaseHolder("t", "g")
		c.kill(victim)
		next := c.waitLeader("t")
		if next == victim {
			t.Fatalf("cycle %d: the killed node still leads", done)
		}
		c.start(victim)
	}
	if done < min(cycles, 2) {
		t.Fatalf("only %d kill cycles ran", done)
	}
	for zero, zero2 := 0, 0; !consume(c.waitLeader("t"), &zero, &zero2, true); {
	}
	if len(redelivered) > 0 {
		t.Fatalf("acknowledged messages delivered again: %v", redelivered[:min(10, len(redelivered))])
	}
	for off := range uint64(total) {
		if !acked[off] {
			t.Fatalf("message %d was never delivered after the failovers", off)
		}
	}
	c.waitCommitted("t", "g", total)
	t.Logf("%d leader kills; %d messages, each acked once, none delivered again after its ack", done, total)
}

// A consumer group's acks survive the loss of the topic's leader: a group
// consumer acks part of the topic and holds more unacked when the leader
// is killed with SIGKILL; the group continues on the new leader from the
// committed position: no acknowledged message is delivered again, none
// left unacknowledged is lost, and every replica holds the same committed
// offset. The consumer's client, given every node, follows the leader.
func TestClusterGroupKillLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	groupKillLeader(t, 2, 60*time.Second, true)
}

// The same, 8 times (HARAQA_SLOW=1), within 2 minutes, with the consumer
// connected to the leader the test finds (as hrq or a client given one
// address is).
func TestSlowClusterGroupKillLeader(t *testing.T) {
	if os.Getenv("HARAQA_SLOW") == "" {
		t.Skip("HARAQA_SLOW=1 runs it")
	}
	groupKillLeader(t, 8, 2*time.Minute, false)
}

// ackSome acks n messages of group g through a client given every live
// node (it follows the leader); an ack not confirmed does not count.
func ackSome(t *testing.T, c *procCluster, n int) {
	t.Helper()
	var addrs []string
	for _, p := range c.nodes {
		if alive(p) {
			addrs = append(addrs, p.addr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, "tcp://"+strings.Join(addrs, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	gc := client.NewGroupConsumer(cl, "g", "t", client.GroupFetchMax(10), client.GroupWait(300*time.Millisecond))
	for m, err := range gc.Messages(ctx) {
		if err != nil || m.Ack() != nil {
			continue
		}
		if n--; n == 0 {
			break
		}
	}
	if n > 0 {
		t.Fatalf("%d acks short", n)
	}
	gc.Close(ctx)
}

// A replica that catches up from a Raft snapshot (it was down while the
// others acked and compacted their logs past those acks) holds the same
// consumer-group state as the others: the snapshot carries it.
func TestClusterGroupStateFromSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3, "-raft-snapshot-bytes", "32768")
	c.createTopic("t")
	produceBulk(t, c.nodes[0], "t", 200, 10)
	lead := c.waitLeader("t")
	ackSome(t, c, 100)
	c.waitCommitted("t", "g", 100)
	victim := c.byID(lead.id%3 + 1)
	c.kill(victim)
	ackSome(t, c, 50)
	lead = c.waitLeader("t")
	st, err := topicStatus(lead, "t")
	if err != nil {
		t.Fatal(err)
	}
	// 4 MiB while the victim is down: the others compact past the acks.
	produceBulk(t, lead, "t", 2048, 2048)
	waitCompacted(t, c, "t", victim, st.Commit+1)
	c.start(victim)
	c.waitCommitted("t", "g", 150)
	victim.mu.Lock()
	caught := strings.Contains(victim.logs.String(), "caught up from a snapshot")
	victim.mu.Unlock()
	if !caught {
		t.Fatalf("node %d did not catch up from a snapshot", victim.id)
	}
}
