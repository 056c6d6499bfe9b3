package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
)

// testNode is one in-process node: engine, cluster node, its directory.
type testNode struct {
	id   uint64
	dir  string
	addr string
	e    *engine.Engine
	n    *Node
}

type testCluster struct {
	t     *testing.T
	peers map[uint64]string
	nodes map[uint64]*testNode
	tick  time.Duration // Raft tick (default 20 ms)
}

func newTestCluster(t *testing.T, size int) *testCluster {
	t.Helper()
	return newTestClusterTick(t, size, 0)
}

// newTestClusterTick starts size in-process nodes with Raft tick tick (0:
// 20 ms; the election timeout is 10 ticks).
func newTestClusterTick(t *testing.T, size int, tick time.Duration) *testCluster {
	t.Helper()
	c := &testCluster{t: t, peers: map[uint64]string{}, nodes: map[uint64]*testNode{}, tick: tick}
	lns := map[uint64]net.Listener{}
	for i := 1; i <= size; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[uint64(i)] = ln
		c.peers[uint64(i)] = ln.Addr().String()
	}
	for id, ln := range lns {
		tn := &testNode{id: id, dir: t.TempDir(), addr: c.peers[id]}
		c.nodes[id] = tn
		c.start(tn, ln)
	}
	t.Cleanup(func() {
		for _, tn := range c.nodes {
			c.stop(tn)
		}
	})
	return c
}

func (c *testCluster) start(tn *testNode, ln net.Listener) {
	c.t.Helper()
	var err error
	if ln == nil {
		for range 50 {
			if ln, err = net.Listen("tcp", tn.addr); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			c.t.Fatal(err)
		}
	}
	relay := &Relay{}
	tn.e, err = engine.Open(engine.Options{Volumes: []string{filepath.Join(tn.dir, "data")}, InitVolumes: true, GroupRecords: relay.GroupRecords,
		DeadLetterAppend: relay.DeadLetterAppend})
	if err != nil {
		c.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", tn.id)
	tick := c.tick
	if tick == 0 {
		tick = 20 * time.Millisecond
	}
	tn.n, err = Open(Config{NodeID: tn.id, Peers: c.peers, Listener: ln, Dir: filepath.Join(tn.dir, "cluster"), Engine: tn.e,
		Logger: log, TickInterval: tick, Relay: relay})
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) stop(tn *testNode) {
	if tn.n != nil {
		tn.n.Close()
		tn.e.Close()
		tn.n, tn.e = nil, nil
	}
}

// produce sends one message through node id and returns its offset.
func produce(ctx context.Context, n *Node, topic string, msg []byte) (uint64, error) {
	b, err := record.AppendBatch(nil, msg)
	if err != nil {
		return 0, err
	}
	p, err := n.Enqueue(ctx, topic, b)
	if err != nil {
		return 0, err
	}
	return p.Wait()
}

// logBytes returns the node's replica of topic from offset 0, whole.
func logBytes(t *testing.T, e *engine.Engine, topic string) ([]byte, uint64) {
	t.Helper()
	_, end, err := e.Offsets(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for off := uint64(0); off < end; {
		var res engine.ReadResult
		if err := e.Read(topic, off, end-off, 1<<20, &res); err != nil {
			t.Fatal(err)
		}
		for _, ch := range res.Chunks {
			d := ch.Data()
			out = append(out, d...)
			for p := 0; p < len(d); {
				h, err := record.ParseHeader(d[p:])
				if err != nil {
					t.Fatal(err)
				}
				off = h.BaseOffset + uint64(h.Count)
				p += h.Size()
			}
		}
		res.Release()
	}
	return out, end
}

// messageAt returns the single message of the batch at off.
func messageAt(t *testing.T, e *engine.Engine, topic string, off uint64) []byte {
	t.Helper()
	var res engine.ReadResult
	defer res.Release()
	if err := e.Read(topic, off, 1, 1<<20, &res); err != nil {
		t.Fatalf("read %d: %v", off, err)
	}
	d := res.Chunks[0].Data()
	h, _ := record.ParseHeader(d)
	if h.BaseOffset != off {
		t.Fatalf("batch at %d has base %d", off, h.BaseOffset)
	}
	var it record.Iter
	it.ResetPayload(d[record.HeaderSize:record.HeaderSize+int(h.PayloadLen)], &h)
	m, ok := it.Next()
	if !ok {
		t.Fatalf("no message at %d: %v", off, it.Err())
	}
	return bytes.Clone(m)
}

// waitSame waits until every running node's replica of topic holds end
// offsets at least min and all are equal, then checks the logs are byte
// for byte the same.
func (c *testCluster) waitSame(topic string, min uint64) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ends []uint64
		same := true
		for _, tn := range c.nodes {
			if tn.e == nil {
				continue
			}
			_, end, err := tn.e.Offsets(topic)
			if err != nil {
				same = false
				break
			}
			if len(ends) > 0 && end != ends[0] || end < min {
				same = false
			}
			ends = append(ends, end)
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("replicas did not converge: ends %v, want >= %d", ends, min)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var first []byte
	for id, tn := range c.nodes {
		if tn.e == nil {
			continue
		}
		b, _ := logBytes(c.t, tn.e, topic)
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			c.t.Fatalf("node %d's replica differs (%d bytes vs %d)", id, len(b), len(first))
		}
	}
}

// An acknowledged produce on any replica is stored at its offset on every
// replica, and the replicas hold the same bytes.
func TestReplicatedProduce(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	if err := c.nodes[1].n.CreateTopic("events"); err != nil {
		t.Fatal(err)
	}
	if err := c.nodes[2].n.CreateTopic("events"); !errors.Is(err, engine.ErrTopicExists) {
		t.Fatalf("second create: %v, want ErrTopicExists", err)
	}
	acked := map[uint64][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id := uint64(1); id <= 3; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				msg := fmt.Appendf(nil, "n%d-%d", id, i)
				off, err := produce(ctx, c.nodes[id].n, "events", msg)
				if err != nil {
					t.Errorf("produce via %d: %v", id, err)
					return
				}
				mu.Lock()
				if _, dup := acked[off]; dup {
					t.Errorf("offset %d acked twice", off)
				}
				acked[off] = msg
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	c.waitSame("events", 150)
	for _, tn := range c.nodes {
		for off, msg := range acked {
			if got := messageAt(t, tn.e, "events", off); !bytes.Equal(got, msg) {
				t.Fatalf("node %d offset %d: %q, want %q", tn.id, off, got, msg)
			}
		}
		if got := tn.n.Topics(""); len(got) != 1 || got[0] != "events" {
			t.Fatalf("node %d topics %v", tn.id, got)
		}
	}
}

// With one node of three stopped the others go on acknowledging; the
// stopped node catches up when it returns, and a restarted cluster keeps
// every acknowledged message (the Raft log is replayed, nothing applied
// twice).
func TestNodeStopCatchUpRestart(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	if err := c.nodes[1].n.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64][]byte{}
	send := func(via uint64, k int) {
		for i := range k {
			msg := fmt.Appendf(nil, "via%d-%d-%d", via, len(acked), i)
			off, err := produce(ctx, c.nodes[via].n, "t", msg)
			if err != nil {
				t.Fatalf("produce via %d: %v", via, err)
			}
			acked[off] = msg
		}
	}
	send(2, 20)
	c.stop(c.nodes[1])
	send(2, 20)
	send(3, 20)
	c.start(c.nodes[1], nil)
	c.waitSame("t", 60)
	send(1, 10)
	for _, tn := range c.nodes {
		c.stop(tn)
	}
	for _, tn := range c.nodes {
		c.start(tn, nil)
	}
	send(3, 10)
	c.waitSame("t", 80)
	for _, tn := range c.nodes {
		for off, msg := range acked {
			if got := messageAt(t, tn.e, "t", off); !bytes.Equal(got, msg) {
				t.Fatalf("node %d offset %d: %q, want %q", tn.id, off, got, msg)
			}
		}
	}
}

// A produce is stored once even when leadership moves while it is in
// flight: a proposal proposed again after a leader change is skipped if
// its first copy made it into the log.
func TestLeaderChangesStoreOnce(t *testing.T) {
	c := newTestCluster(t, 3)
	if err := c.nodes[1].n.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				via := c.nodes[uint64(w%3+1)].n
				if _, err := produce(ctx, via, "t", fmt.Appendf(nil, "w%d-%d", w, i)); err == nil {
					mu.Lock()
					sent++
					mu.Unlock()
				}
			}
		}()
	}
	for i := range 30 {
		to := uint64(i%3 + 1)
		for _, tn := range c.nodes {
			tn.n.TransferLeader(ctx, "t", to) // only the leader acts on it
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	c.waitSame("t", uint64(sent))
	b, end := logBytes(t, c.nodes[1].e, "t")
	seen := map[string]uint64{}
	for p := 0; p < len(b); {
		h, err := record.ParseHeader(b[p:])
		if err != nil {
			t.Fatal(err)
		}
		m := string(messageAt(t, c.nodes[1].e, "t", h.BaseOffset))
		if prev, dup := seen[m]; dup {
			t.Fatalf("%q stored twice, at %d and %d", m, prev, h.BaseOffset)
		}
		seen[m] = h.BaseOffset
		p += h.Size()
	}
	t.Logf("%d produces acknowledged, %d stored, each once", sent, end)
}

// Deleting a replicated topic deletes it on every replica; a topic
// recreated under the name starts empty, and a restart of every node
// neither brings the deleted topic's data back nor loses the new one's
// (the catalog's creates and deletes are not replayed).
func TestDeleteRecreateRestart(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	if err := c.nodes[1].n.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := produce(ctx, c.nodes[2].n, "t", fmt.Appendf(nil, "old-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.nodes[3].n.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	if err := c.nodes[3].n.DeleteTopic("t"); !errors.Is(err, engine.ErrTopicNotFound) {
		t.Fatalf("second delete: %v, want ErrTopicNotFound", err)
	}
	if err := c.nodes[2].n.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		off, err := produce(ctx, c.nodes[1].n, "t", fmt.Appendf(nil, "new-%d", i))
		if err != nil || off != uint64(i) {
			t.Fatalf("produce to the new topic: offset %d, %v", off, err)
		}
	}
	c.waitSame("t", 3)
	for _, tn := range c.nodes {
		c.stop(tn)
	}
	for _, tn := range c.nodes {
		c.start(tn, nil)
	}
	if _, err := produce(ctx, c.nodes[3].n, "t", []byte("new-3")); err != nil {
		t.Fatal(err)
	}
	c.waitSame("t", 4)
	for _, tn := range c.nodes {
		if _, end, _ := tn.e.Offsets("t"); end != 4 {
			t.Fatalf("node %d: end %d after restart, want 4", tn.id, end)
		}
		for i := range 4 {
			if got := string(messageAt(t, tn.e, "t", uint64(i))); got != fmt.Sprintf("new-%d", i) {
				t.Fatalf("node %d offset %d: %q", tn.id, i, got)
			}
		}
	}
}
