//go:build unix

package cluster_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// offsetsOf asks node p for topic's start and end offsets.
func offsetsOf(p *proc, topic string) (uint64, uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, "tcp://"+p.addr)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	return cl.Offsets(ctx, topic)
}

// A replica that was down while the other replicas' retention dropped the
// front of the topic's log (and their Raft logs were compacted past what it
// holds) still catches up: it drops its own log below their start, as
// retention would have, and fetches on from there. Afterwards every
// replica holds the same bytes for every offset, and consumers on any
// replica see the same start.
func TestClusterCatchUpPastRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3, "-raft-snapshot-bytes", "32768", "-retention-bytes", "1048576", "-retention-interval", "200ms")
	c.createTopic("t")
	first := produceBulk(t, c.nodes[0], "t", 64, 2048) / 2048
	lead, _ := c.leaderOf("t")
	victim := c.byID(lead%3 + 1)
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, end, err := offsetsOf(victim, "t"); err == nil && end == uint64(first) {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("node %d never held the first %d messages", victim.id, first)
		}
	}
	var victimLast uint64
	if st, err := topicStatus(c.byID(lead), "t"); err == nil {
		victimLast = st.Match[victim.id]
	}
	c.kill(victim)
	var live []*proc
	for _, p := range c.nodes {
		if p != victim {
			live = append(live, p)
		}
	}
	// 4 MiB while it is down: four 1 MiB segments and more, most of which
	// retention removes.
	total := uint64(first + produceBulk(t, live[0], "t", 2048, 2048)/2048)
	waitCompacted(t, c, "t", victim, victimLast+1)
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ok := true
		var starts []uint64
		for _, p := range live {
			s, _, err := offsetsOf(p, "t")
			starts = append(starts, s)
			ok = ok && err == nil && s > uint64(first)
		}
		if ok {
			t.Logf("the live replicas start at %v; the down one ends at %d", starts, first)
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("retention did not run on the live nodes: starts %v", starts)
		}
	}
	c.start(victim)
	var got [3][2]uint64
	for wait := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		same := true
		for i, p := range c.nodes {
			s, e, err := offsetsOf(p, "t")
			got[i] = [2]uint64{s, e}
			same = same && err == nil && e == total && got[i] == got[0]
		}
		if same {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("replicas did not converge on [start, end): %v, want end %d", got, total)
		}
	}
	start := got[0][0]
	ref := rawReadFrom(t, c.nodes[0], "t", start)
	for _, p := range c.nodes[1:] {
		if b := rawReadFrom(t, p, "t", start); !bytes.Equal(b, ref) {
			t.Fatalf("node %d's log from %d differs from node 1's (%d and %d bytes)", p.id, start, len(b), len(ref))
		}
	}
	msgs := messages(t, ref)
	for off := start; off < total; off++ {
		want := strings.Repeat(string(rune('a'+(off-uint64(first))%26)), 2048)
		if off < uint64(first) {
			want = strings.Repeat(string(rune('a'+off%26)), 2048)
		}
		if msgs[off] != want {
			t.Fatalf("offset %d holds %.16q, want %.16q", off, msgs[off], want)
		}
	}
	victim.mu.Lock()
	skipped := strings.Contains(victim.logs.String(), "dropping its log below their start")
	victim.mu.Unlock()
	if !skipped {
		t.Fatalf("node %d did not skip to the others' start", victim.id)
	}
	t.Logf("every replica holds [%d, %d), byte for byte the same", start, total)
}
