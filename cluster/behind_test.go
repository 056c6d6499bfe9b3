package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
)

// An acknowledged message is never hidden from a reader: a replica that
// has not applied it yet (a follower learns of a commit a moment after the
// leader acknowledged it; after a leader dies, only once the next leader
// commits) is asked for an offset past its end by a consumer that read up
// to there elsewhere. It waits for the message rather than answering
// "offset out of range", which ends a Consumer's iteration (or, with a
// reset policy, sends it back to the start or to its stale end).
func TestReplicaBehindWaitsForOffset(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	c.topicWithOne()
	lead := c.leaderOf("t")
	behind := c.followerOf(lead)
	// Hold the follower's apply: its engine stays at offset 1 while the
	// leader and the other follower commit and acknowledge two more.
	release := holdApply(t, behind)
	for i, m := range []string{"m1", "m2"} {
		off, err := produce(ctx, lead.n, "t", []byte(m))
		if err != nil {
			t.Fatal(err)
		}
		if off != uint64(i+1) {
			t.Fatalf("%s acknowledged at %d, want %d", m, off, i+1)
		}
	}
	if _, end, _ := behind.e.Offsets("t"); end != 1 {
		t.Fatalf("held replica ends at %d, want 1", end)
	}
	// A consumer that read offsets 0 and 1 from the leader asks the
	// follower for offset 2.
	type answer struct {
		msg []byte
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		var res engine.ReadResult
		defer res.Release()
		err := behind.n.Read("t", 2, 1, 1<<20, &res)
		if err == nil && len(res.Chunks) == 0 {
			// At the end (the replica has offset 1 now): a long poll.
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = behind.n.Wait(wctx, "t", 2)
			cancel()
			if err == nil {
				err = behind.n.Read("t", 2, 1, 1<<20, &res)
			}
			if err == nil && len(res.Chunks) == 0 {
				err = errors.New("no message")
			}
		}
		if err != nil {
			ch <- answer{err: err}
			return
		}
		ch <- answer{msg: messageAt(t, behind.e, "t", 2)}
	}()
	select {
	case a := <-ch:
		t.Fatalf("the replica behind answered before it had offset 2: %v (message %q)", a.err, a.msg)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	a := <-ch
	if a.err != nil {
		t.Fatalf("read of acknowledged offset 2 on the replica behind: %v", a.err)
	}
	if string(a.msg) != "m2" {
		t.Fatalf("offset 2 holds %q, want m2", a.msg)
	}
}
