//go:build unix

package cluster_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// produceBulk produces count messages of size bytes to topic through node
// p, in batches of 16, and returns the bytes of message data acknowledged.
func produceBulk(t *testing.T, p *proc, topic string, count, size int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, "tcp://"+p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	total := 0
	for i := 0; i < count; i += 16 {
		var msgs [][]byte
		for j := i; j < min(i+16, count); j++ {
			msgs = append(msgs, bytes.Repeat([]byte{byte('a' + j%26)}, size))
		}
		if _, err := cl.Produce(ctx, topic, msgs...); err != nil {
			t.Fatalf("bulk produce: %v", err)
		}
		total += len(msgs) * size
	}
	return total
}

// waitCompacted waits until every node but down has compacted topic's Raft
// log past index past, and returns their Raft log file sizes.
func waitCompacted(t *testing.T, c *procCluster, topic string, down *proc, past uint64) []int64 {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok := true
		var sizes []int64
		var snaps []uint64
		for _, p := range c.nodes {
			if p == down {
				continue
			}
			s, err := status(p)
			if err != nil {
				ok = false
				break
			}
			sizes = append(sizes, s.RaftLogBytes)
			for _, g := range s.Topics {
				if g.Topic == topic {
					snaps = append(snaps, g.Snapshot)
					if g.Snapshot < past {
						ok = false
					}
				}
			}
		}
		if ok {
			return sizes
		}
		if time.Now().After(deadline) {
			t.Fatalf("raft logs not compacted past %d: snapshots at %v", past, snaps)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A replica that was down while the others produced past their Raft log
// compaction catches up from a snapshot (the leader's log no longer holds
// what it missed) and ends byte for byte the same as the others; and the
// Raft log file stays bounded: it is compacted and rewritten instead of
// holding everything ever produced.
func TestClusterSnapshotCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3, "-raft-snapshot-bytes", "32768")
	c.createTopic("t")
	l := c.startLoad("t", 2)
	for wait := time.Now().Add(30 * time.Second); l.count() < 100; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("only %d acknowledged", l.count())
		}
	}
	lead, _ := c.leaderOf("t")
	victim := c.byID(lead%3 + 1)
	c.kill(victim)
	var other *proc
	for _, p := range c.nodes {
		if p != victim {
			other = p
		}
	}
	var victimLast uint64
	if st, err := topicStatus(c.byID(lead), "t"); err == nil {
		victimLast = st.Match[victim.id]
	}
	// 4 MiB while the victim is down: many times the snapshot threshold.
	bulk := produceBulk(t, other, "t", 2048, 2048)
	// The live nodes compact past what the victim holds and rewrite their
	// Raft log files.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		var sizes []int64
		var snaps []uint64
		for _, p := range c.nodes {
			if p == victim {
				continue
			}
			s, err := status(p)
			if err != nil {
				ok = false
				break
			}
			sizes = append(sizes, s.RaftLogBytes)
			for _, g := range s.Topics {
				if g.Topic == "t" {
					snaps = append(snaps, g.Snapshot)
					if g.Snapshot <= victimLast+1 {
						ok = false
					}
				}
			}
			if s.RaftLogBytes > int64(bulk)/4 {
				ok = false
			}
		}
		if ok {
			t.Logf("after %d bytes of messages: raft log files %v bytes, snapshots at %v (the down node had %d)", bulk, sizes, snaps, victimLast)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("raft logs not compacted: files %v bytes after %d bytes produced, snapshots at %v (the down node had %d)", sizes, bulk, snaps, victimLast)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.start(victim)
	time.Sleep(500 * time.Millisecond)
	l.finish()
	logs := c.converge("t", l.count())
	c.check(l, logs)
	victim.mu.Lock()
	caught := strings.Contains(victim.logs.String(), "caught up from a snapshot")
	victim.mu.Unlock()
	if !caught {
		t.Fatalf("node %d did not catch up from a snapshot", victim.id)
	}
	t.Logf("node %d caught up from a snapshot to %d bytes (%d messages acknowledged)", victim.id, len(logs[0]), len(l.acked))
}

// Killing the leader with SIGKILL while every node compacts its Raft logs
// and rewrites its Raft log file all the time (a tiny snapshot threshold)
// loses no acknowledged message, and the replicas end byte for byte the
// same: a crash in the middle of a compaction or a rewrite leaves a log
// the restart recovers from.
func TestClusterKillLeaderCompacting(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	checkCompacted(t, killLeaderCycles(t, 3, 60*time.Second, "-raft-snapshot-bytes", "4096"))
}

// checkCompacted fails unless every node compacted the topic's Raft log
// and some node rewrote its Raft log file.
func checkCompacted(t *testing.T, c *procCluster) {
	t.Helper()
	rewrites := 0
	for _, p := range c.nodes {
		// A node just restarted compacts within a few seconds.
		for wait := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			st, err := topicStatus(p, "t")
			if err == nil && st.Snapshot > 1 {
				break
			}
			if time.Now().After(wait) {
				t.Fatalf("node %d never compacted the topic's raft log (%+v, %v)", p.id, st, err)
			}
		}
	}
	count := func() int {
		n := 0
		for _, p := range c.nodes {
			p.mu.Lock()
			n += strings.Count(p.logs.String(), "raft log rewritten")
			p.mu.Unlock()
		}
		return n
	}
	rewrites = count()
	if rewrites == 0 {
		// A rewrite waits for the file to pass 4 × the threshold: on a
		// loaded machine the kill cycles may have produced too little.
		// Produce on until a node rewrites (bounded in time).
		l := c.startLoad("t", 2)
		for wait := time.Now().Add(60 * time.Second); rewrites == 0; rewrites = count() {
			if time.Now().After(wait) {
				l.finish()
				t.Fatalf("no node rewrote its raft log file (%d more messages acknowledged)", l.count())
			}
			time.Sleep(100 * time.Millisecond)
		}
		l.finish()
		c.check(l, c.converge("t", l.count()))
	}
	t.Logf("raft log files rewritten %d times", rewrites)
}

// The same, 20 times (HARAQA_SLOW=1).
func TestSlowClusterKillLeaderCompacting20(t *testing.T) {
	if os.Getenv("HARAQA_SLOW") == "" {
		t.Skip("HARAQA_SLOW=1 runs it")
	}
	checkCompacted(t, killLeaderCycles(t, 20, 5*time.Minute, "-raft-snapshot-bytes", "4096"))
}
