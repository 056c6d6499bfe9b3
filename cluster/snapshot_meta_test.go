//go:build unix

package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/cluster"
)

// catalogOf is node p's catalog as its status tells it: every topic with
// its group and replicas, sorted.
func catalogOf(p *proc) ([]string, error) {
	s, err := status(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range s.Topics {
		out = append(out, fmt.Sprintf("%s/%d/%v", g.Topic, g.Group, g.Replicas))
	}
	slices.Sort(out)
	return out, nil
}

// churnTopics creates n topics named prefix<i> through the live nodes, 4
// at a time, deletes all of them but every 4th, and returns the names
// kept.
func churnTopics(t *testing.T, live []*proc, prefix string, n int) []string {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cl, err := client.Dial(ctx, "tcp://"+live[w%len(live)].addr)
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			for i := w; i < n; i += 4 {
				name := fmt.Sprintf("%s%d", prefix, i)
				if err := cl.CreateTopic(ctx, name); err != nil {
					errs <- fmt.Errorf("create %s: %w", name, err)
					return
				}
				if i%4 != 0 {
					if err := cl.DeleteTopic(ctx, name); err != nil {
						errs <- fmt.Errorf("delete %s: %w", name, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var kept []string
	for i := 0; i < n; i += 4 {
		kept = append(kept, fmt.Sprintf("%s%d", prefix, i))
	}
	return kept
}

// waitMetaCompacted waits until the live nodes compacted their metadata
// logs past index past, and returns the lowest index they compacted at.
func waitMetaCompacted(t *testing.T, live []*proc, past uint64) uint64 {
	t.Helper()
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var snaps []uint64
		var at []string
		ok := true
		for _, p := range live {
			s, err := status(p)
			if err != nil {
				at = append(at, fmt.Sprintf("node %d: %v", p.id, err))
				ok = false
				continue
			}
			snaps = append(snaps, s.Meta.Snapshot)
			at = append(at, fmt.Sprintf("node %d (%s): snapshot %d, commit %d, match %v, raft log file %d bytes",
				p.id, s.Meta.Role, s.Meta.Snapshot, s.Meta.Commit, s.Meta.Match, s.RaftLogBytes))
			ok = ok && s.Meta.Snapshot > past
		}
		if ok {
			return slices.Min(snaps)
		}
		if time.Now().After(wait) {
			t.Fatalf("metadata logs not compacted past %d: %s", past, strings.Join(at, "; "))
		}
	}
}

// metaChurn is how many topics each churn of TestClusterMetadataSnapshot
// creates (it deletes 3 of every 4): enough that the churn's own commands
// fill more than the test's -raft-snapshot-bytes (4096) of every node's
// metadata log. Each command is an entry of a 19-byte header and the
// topic's name (2 to 4 bytes here): 120 topics make 210 commands, at least
// 4,410 bytes, so every node compacts during the churn however much its
// log held after its previous compaction. (A churn of 40 topics, 70
// commands, did not: a node that had compacted near the end of the churn
// before held about 3 KB after it and never compacted, unless its Raft log
// file happened to be due for a rewrite.)
const metaChurn = 120

// metaCommit is the highest metadata commit index the live nodes know.
func metaCommit(t *testing.T, live []*proc) uint64 {
	t.Helper()
	var top uint64
	for _, p := range live {
		s, err := status(p)
		if err != nil {
			t.Fatal(err)
		}
		top = max(top, s.Meta.Commit)
	}
	return top
}

// waitSameCatalog waits until every node's catalog is the same and
// returns it.
func waitSameCatalog(t *testing.T, c *procCluster) []string {
	t.Helper()
	var cats [][]string
	for wait := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		cats = cats[:0]
		ok := true
		for _, p := range c.nodes {
			cat, err := catalogOf(p)
			ok = ok && err == nil && (len(cats) == 0 || slices.Equal(cat, cats[0]))
			cats = append(cats, cat)
		}
		if ok {
			return cats[0]
		}
		if time.Now().After(wait) {
			for i, cat := range cats {
				t.Logf("node %d: %d topics", i+1, len(cat))
			}
			t.Fatalf("catalogs differ")
		}
	}
}

// The metadata group's Raft log is compacted: after many topic creations
// and deletions it starts after a snapshot of the catalog instead of
// holding every command. A node that was down past that compaction
// installs the catalog from the snapshot: it deletes its replicas of the
// topics deleted meanwhile and starts those created, ending with the same
// catalog as the others; so does a node whose disk was wiped; a node
// restarted after the compaction starts from its own snapshot with the
// same catalog; and the topics keep replicating on all of them.
func TestClusterMetadataSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3, "-raft-snapshot-bytes", "4096")
	victim := c.nodes[2]
	live := c.nodes[:2]
	c.createTopic("keep")
	// Topics the victim replicates, deleted while it is down.
	var doomed []string
	for i := range 3 {
		name := fmt.Sprintf("doomed%d", i)
		c.createTopic(name)
		doomed = append(doomed, name)
	}
	for _, name := range doomed {
		waitFor(t, "node 3 holding a replica of "+name, func() (bool, string) {
			_, err := os.Stat(filepath.Join(victim.dir, "data", "topics", name))
			return err == nil, fmt.Sprint(err)
		})
	}
	c.kill(victim)
	// The victim holds no more of the metadata log than this.
	base := metaCommit(t, live)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, "tcp://"+live[0].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, name := range doomed {
		if err := cl.DeleteTopic(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	kept := churnTopics(t, live, "a", metaChurn)
	snap := waitMetaCompacted(t, live, base)
	t.Logf("metadata logs compacted at %d after %d topics created and %d deleted", snap, metaChurn, metaChurn-len(kept))

	// Down past the compaction: caught up from the snapshot.
	c.start(victim)
	cat := waitSameCatalog(t, c)
	for _, name := range doomed {
		if _, err := os.Stat(filepath.Join(victim.dir, "data", "topics", name)); !os.IsNotExist(err) {
			t.Fatalf("node 3 still holds a replica of %s, deleted while it was down (%v)", name, err)
		}
	}
	if want := len(kept) + 1; len(cat) != want {
		t.Fatalf("catalog holds %d topics, want %d: %v", len(cat), want, cat)
	}
	// Restarted after the compaction: from its own snapshot.
	c.stop(live[1])
	c.start(live[1])
	if s, err := status(live[1]); err != nil || s.Meta.Snapshot < snap {
		t.Fatalf("node 2 restarted: metadata log starts after %d (%v), want at least %d", s.Meta.Snapshot, err, snap)
	}
	waitSameCatalog(t, c)

	// Wiped, past another compaction.
	c.kill(victim)
	if err := os.RemoveAll(filepath.Join(victim.dir, "data")); err != nil {
		t.Fatal(err)
	}
	// Each live node compacts again: past what its log held before.
	base = metaCommit(t, live)
	kept = append(kept, churnTopics(t, live, "b", metaChurn)...)
	waitMetaCompacted(t, live, base)
	c.start(victim)
	cat = waitSameCatalog(t, c)
	if want := len(kept) + 1; len(cat) != want {
		t.Fatalf("catalog holds %d topics, want %d", len(cat), want)
	}
	victim.mu.Lock()
	installed := strings.Count(victim.logs.String(), "installed the catalog from a metadata snapshot")
	victim.mu.Unlock()
	if installed < 2 {
		t.Fatalf("node 3 installed the catalog from a snapshot %d times, want 2 (down, then wiped)", installed)
	}
	// A node that joins now is caught up from a snapshot too: one taken
	// after it was added (the last one's configuration lacks it).
	n4 := c.newNode(4)
	n4.peers = fmt.Sprintf("1=%s,4=%s", c.nodes[0].caddr, n4.caddr)
	// An admin command not committed in time (a metadata leader change
	// under way) may still be applied: it is sent again, as hrq's user
	// would (adding the same node twice changes nothing).
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		err := cluster.SendAdmin(ctx, c.nodes[0].caddr, &cluster.AdminRequest{Op: "add-node", Node: 4, Addr: n4.caddr})
		cancel()
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("add-node through node 1: %v", err)
		}
		t.Logf("add-node through node 1, attempt %d: %v; again", attempt, err)
	}
	c.start(n4)
	waitFor(t, "node 4 a voter of the metadata group with the others' catalog", func() (bool, string) {
		s, err := status(c.nodes[0])
		if err != nil {
			return false, err.Error()
		}
		c1, err1 := catalogOf(c.nodes[0])
		c4, err4 := catalogOf(n4)
		return slices.Equal(s.Meta.Replicas, []uint64{1, 2, 3, 4}) && len(s.Meta.Learners) == 0 && err1 == nil && err4 == nil && slices.Equal(c1, c4),
			fmt.Sprintf("meta %+v; node 4 has %d topics, node 1 %d", s.Meta, len(c4), len(c1))
	})
	n4.mu.Lock()
	joined := strings.Contains(n4.logs.String(), "installed the catalog from a metadata snapshot")
	n4.mu.Unlock()
	if !joined {
		t.Fatalf("node 4 did not install the catalog from a snapshot")
	}

	// Every node replicates: a message produced now reaches them all.
	produceBulk(t, live[0], "keep", 16, 100)
	c.converge("keep", 16)
	for _, name := range kept[:3] {
		produceBulk(t, live[0], name, 1, 10)
		var on []*proc
		for _, p := range c.nodes {
			if _, err := os.Stat(filepath.Join(p.dir, "data", "topics", name)); err == nil {
				on = append(on, p)
			}
		}
		if len(on) != 3 {
			t.Fatalf("topic %s has replicas on %d nodes, want 3", name, len(on))
		}
		c.convergeOn(name, 1, on)
	}
}
