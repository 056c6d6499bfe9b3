package cluster

import (
	"context"
	"sync"
	"testing"
	"time"
)

// A leader's produce is committed by its two followers' append responses,
// each sent once that follower synced the entry (a majority of the
// replicas), while the leader's own Raft log sync has not finished: the
// leader steps those responses during its sync and applies and answers
// the produce then, instead of after its own sync. The produce is stored
// on every replica; the leader's log is synced before its next round.
func TestLeaderAnswersBeforeOwnSyncWhenFollowersSynced(t *testing.T) {
	c := newTestCluster(t, 3)
	c.topicWithOne()
	lead := c.leaderOf("t")
	block := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(block) }) }
	t.Cleanup(release)
	var mu sync.Mutex
	blocked := 0
	set := make(chan struct{})
	lead.n.doq <- func() {
		lead.n.wal.beforeSync = func() {
			mu.Lock()
			blocked++
			mu.Unlock()
			<-block
		}
		close(set)
	}
	<-set
	type result struct {
		off uint64
		err error
	}
	res := make(chan result, 1)
	go func() {
		off, err := produce(context.Background(), lead.n, "t", []byte("m1"))
		res <- result{off, err}
	}()
	var off uint64
	var err error
	select {
	case r := <-res:
		off, err = r.off, r.err
	case <-time.After(10 * time.Second):
		release()
		<-res
		t.Fatal("the produce was not answered in 10 s while the leader's own sync was held")
	}
	mu.Lock()
	b := blocked
	mu.Unlock()
	if err != nil {
		t.Fatalf("produce while the leader's own sync was held (%d syncs waiting): %v", b, err)
	}
	if off != 1 || b == 0 {
		t.Fatalf("offset %d, leader syncs held %d: want offset 1 answered during a held sync", off, b)
	}
	release()
	c.waitSame("t", 2)
}
