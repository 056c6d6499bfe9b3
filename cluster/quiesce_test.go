//go:build unix

package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// waitQuiet waits until every Raft group (topics and metadata) is quiet on
// every running node.
func (c *procCluster) waitQuiet(within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		busy := ""
		for _, p := range c.nodes {
			s, err := status(p)
			if err != nil {
				busy = fmt.Sprintf("node %d: %v", p.id, err)
				break
			}
			if !s.Meta.Quiet {
				busy = fmt.Sprintf("node %d: metadata group", p.id)
			}
			for _, g := range s.Topics {
				if !g.Quiet {
					busy = fmt.Sprintf("node %d: topic %s (%s, term %d)", p.id, g.Topic, g.Role, g.Term)
					break
				}
			}
			if busy != "" {
				break
			}
		}
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("groups still ticking after %v: %s", within, busy)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// peerDowns counts the "peer down" judgements in every node's log.
func (c *procCluster) peerDowns() int {
	n := 0
	for _, p := range c.nodes {
		p.mu.Lock()
		n += strings.Count(p.logs.String(), "cluster: peer down")
		p.mu.Unlock()
	}
	return n
}

// produceVia produces msg to topic through node p, retrying failures for
// up to a minute; it returns the offset.
func (c *procCluster) produceVia(p *proc, topic, msg string) uint64 {
	c.t.Helper()
	off, err := c.tryProduce(p, topic, msg, false)
	if err != nil {
		c.t.Fatal(err)
	}
	return off
}

// tryProduce produces msg to topic through node p (creating the topic
// first if create), retrying failures for up to a minute.
func (c *procCluster) tryProduce(p *proc, topic, msg string, create bool) (uint64, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cl, err := client.Dial(ctx, "tcp://"+p.addr)
		var off uint64
		if err == nil {
			if create {
				if err = cl.CreateTopic(ctx, topic); errors.Is(err, client.ErrTopicExists) {
					err = nil
				}
			}
			if err == nil {
				off, err = cl.Produce(ctx, topic, []byte(msg))
			}
			cl.Close()
		}
		cancel()
		if err == nil {
			return off, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("produce %s via node %d: %w", topic, p.id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Idle topics cost almost nothing: once written, every topic's Raft group
// goes quiet on every replica and a node sends only its liveness frames
// (no per-topic heartbeats). Quiet groups keep Raft's promise that a dead
// or stalled leader is replaced: a quiet topic whose leader is paused, or
// killed, gets a new leader and acknowledges produces through the others,
// and the resumed old leader steps down.
func TestClusterIdleTopicsQuiet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	const topics = 30
	const tick = 50 * time.Millisecond // startProcCluster's -raft-tick
	c := startProcCluster(t, 3)
	start := time.Now()
	names := make([]string, topics)
	offs := make([]uint64, topics)
	errs := make([]error, topics)
	var wg sync.WaitGroup
	for i := range topics {
		names[i] = fmt.Sprintf("q%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			offs[i], errs[i] = c.tryProduce(c.nodes[i%3], names[i], "first", true)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, off := range offs {
		if off != 0 {
			t.Fatalf("%s: first message at offset %d", names[i], off)
		}
	}
	c.waitQuiet(60 * time.Second)
	t.Logf("%d topics written and quiet after %v", topics, time.Since(start).Round(time.Millisecond))

	// Idle traffic: liveness frames only, one per peer per tick. A node
	// stalled past the election timeout on a loaded machine is judged
	// down and wakes the groups it is in: such a window is measured again.
	const window = 2 * time.Second
	limit := 2 * 2 * float64(time.Second/tick) // 2 peers × 20 ticks/s, doubled
	for attempt := 1; ; attempt++ {
		downs := c.peerDowns()
		var before []uint64
		for _, p := range c.nodes {
			s, err := status(p)
			if err != nil {
				t.Fatal(err)
			}
			before = append(before, s.MsgsOut)
		}
		time.Sleep(window)
		var over []string
		for i, p := range c.nodes {
			s, err := status(p)
			if err != nil {
				t.Fatal(err)
			}
			rate := float64(s.MsgsOut-before[i]) / window.Seconds()
			t.Logf("node %d idle with %d topics: %.0f messages/s", p.id, topics, rate)
			if rate > limit {
				// Per-topic heartbeats would be hundreds per second.
				over = append(over, fmt.Sprintf("node %d sends %.0f messages/s with every group idle (liveness alone is %.0f)", p.id, rate, limit/2))
			}
		}
		if len(over) == 0 {
			break
		}
		if c.peerDowns() == downs || attempt == 3 {
			t.Fatal(strings.Join(over, "; "))
		}
		t.Logf("a node was judged down during the window (a stall): measuring again")
		c.waitQuiet(60 * time.Second)
	}

	// A quiet topic's leader paused past the election timeout.
	topic := names[0]
	lead, term := c.leaderOf(topic)
	old := c.byID(lead)
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	via := c.byID(lead%3 + 1)
	off := c.produceVia(via, topic, "while paused")
	// The node that committed it leads (a status call may time out on a
	// loaded machine: ask again for a while).
	var newLead, newTerm uint64
	for wait := time.Now().Add(10 * time.Second); newLead == 0 && time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
		for _, p := range c.nodes {
			if g, err := topicStatus(p, topic); p != old && err == nil && g.Role == "StateLeader" {
				newLead, newTerm = p.id, g.Term
			}
		}
	}
	old.cmd.Process.Signal(syscall.SIGCONT)
	if off != 1 || newLead == 0 || newTerm <= term {
		t.Fatalf("leader %d paused: produce got offset %d (want 1), leader %d term %d (was term %d)", lead, off, newLead, newTerm, term)
	}
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// Stepped down: a follower in the new term, or (the topic's
		// preferred leader is handed the leadership back within 20 ticks,
		// which a poll on a loaded machine can miss) leading again in a
		// later term, which only a node that gave up its old term can.
		g, err := topicStatus(old, topic)
		if err == nil && g.Term >= newTerm && (g.Role != "StateLeader" || g.Term > newTerm) {
			break
		}
		if time.Now().After(wait) {
			for _, p := range c.nodes {
				og, oerr := topicStatus(p, topic)
				t.Logf("node %d: %+v %v", p.id, og, oerr)
			}
			t.Fatalf("paused leader %d did not step down after resuming: %+v %v", lead, g, err)
		}
	}

	// The paused node knows it stalled (its quiet groups woke: nobody
	// else need tell it that it was replaced). It says so at its first
	// tick after resuming, which may come after the message from the new
	// leader that made it step down: wait for the line.
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		old.mu.Lock()
		stalled := strings.Contains(old.logs.String(), "this node stalled")
		old.mu.Unlock()
		if stalled {
			break
		}
		if time.Now().After(wait) {
			t.Errorf("node %d, paused past the election timeout, did not wake its groups on resuming", lead)
			break
		}
	}

	// A quiet topic's leader killed.
	c.waitQuiet(60 * time.Second)
	topic = names[1]
	lead, _ = c.leaderOf(topic)
	dead := c.byID(lead)
	c.kill(dead)
	via = c.byID(lead%3 + 1)
	if off := c.produceVia(via, topic, "after kill"); off != 1 {
		t.Fatalf("leader %d killed: produce got offset %d, want 1", lead, off)
	}
	c.start(dead)
	for _, topic := range names[:2] {
		logs := c.converge(topic, 2)
		msgs := messages(t, logs[0])
		for i := range logs {
			if string(logs[i]) != string(logs[0]) {
				t.Fatalf("%s: node %d's log differs from node 1's", topic, i+1)
			}
		}
		if len(msgs) != 2 || msgs[0] != "first" {
			t.Fatalf("%s: replicas hold %v", topic, msgs)
		}
	}
}
