package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// replPair is a coordinator engine whose group-state records are appended
// to its own state log and a replica's, each led by a log index, as
// package cluster does through Raft.
type replPair struct {
	mu    sync.Mutex
	index uint64
	coord *Engine
	repl  *Engine
}

func (p *replPair) records(ctx context.Context, topic string, batch []byte) (Pending, error) {
	b := append([]byte(nil), batch...)
	return NewPending(func() (uint64, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.index++
		if err := p.repl.AppendGroupRecords(ctx, topic, p.index, b, true); err != nil {
			return 0, err
		}
		return 0, p.coord.AppendGroupRecords(ctx, topic, p.index, b, false)
	}), nil
}

// A replica that applies a coordinator's replicated group-state records
// holds the same durable group state (committed offset, acks, epoch),
// through compactions of its state log, and keeps it and the last applied
// log index across a restart; the coordinator's own state log too.
func TestReplicatedGroupRecords(t *testing.T) {
	old := compactAfter
	compactAfter = 2 << 10 // compactions on both sides while acks run
	t.Cleanup(func() { compactAfter = old })
	p := &replPair{}
	fsC, fsR := vfs.NewMemFS(), vfs.NewMemFS()
	oc, or := memOpts(fsC), memOpts(fsR)
	oc.GroupRecords, or.GroupRecords = p.records, p.records
	p.coord, p.repl = openEngine(t, oc), openEngine(t, or)
	for _, e := range []*Engine{p.coord, p.repl} {
		mustCreate(t, e, "t")
		fill(t, e, "t", 3000, 100)
	}
	if err := p.coord.ReloadGroups("t", true); err != nil {
		t.Fatal(err)
	}
	mustGroup(t, p.coord, "t", "g", GroupConfig{})
	m := mustJoin(t, p.coord, "t", "g")
	for i := 0; ; i++ {
		res, err := p.coord.GroupFetch(bg, "t", "g", m, 40, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Leases) == 0 {
			break
		}
		// Ack out of order: the second half of each lease first.
		for _, l := range res.Leases {
			mid := l.First + (l.Next-l.First)/2
			for _, r := range []OffsetRange{{First: mid, Next: l.Next}, {First: l.First, Next: mid}} {
				if r.Next > r.First {
					if err := p.coord.GroupAck(bg, "t", "g", m, []OffsetRange{r}); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if i == 20 {
			if _, err := p.coord.SeekGroup(bg, "t", "g", StartPosition{Kind: StartOffset, Offset: 100}); err != nil {
				t.Fatal(err)
			}
			m = mustJoin(t, p.coord, "t", "g")
		}
	}
	same := func(when string) {
		t.Helper()
		c, err1 := p.coord.DescribeGroup("t", "g")
		r, err2 := p.repl.DescribeGroup("t", "g")
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: describe: %v, %v", when, err1, err2)
		}
		if c.Committed != 3000 || r.Committed != c.Committed || r.AckedAbove != c.AckedAbove || r.Epoch != c.Epoch {
			t.Fatalf("%s: coordinator committed %d acked above %d epoch %d, replica %d %d %d; want committed 3000 on both",
				when, c.Committed, c.AckedAbove, c.Epoch, r.Committed, r.AckedAbove, r.Epoch)
		}
		for _, e := range []*Engine{p.coord, p.repl} {
			if got := e.GroupLogIndex("t"); got != p.index {
				t.Fatalf("%s: log index %d, want %d", when, got, p.index)
			}
		}
	}
	same("live")
	for _, e := range []*Engine{p.coord, p.repl} {
		e.gmu.RLock()
		base := e.gsets["t"].log.segments()[0].Base()
		e.gmu.RUnlock()
		if base == 0 {
			t.Fatal("a state log was never compacted")
		}
		// The log is then a snapshot alone: the index is in it.
		e.gmu.RLock()
		gs := e.gsets["t"]
		e.gmu.RUnlock()
		if err := gs.compact(bg); err != nil {
			t.Fatal(err)
		}
	}
	p.coord, p.repl = reopen(t, p.coord, oc), reopen(t, p.repl, or)
	same("after a restart")

	// A replica that starts from another's snapshot (a Raft snapshot's
	// catch-up) holds the same state; one whose log is ahead keeps it.
	snap, ok, err := p.repl.GroupSnapshot("t")
	if err != nil || !ok || len(snap) == 0 {
		t.Fatalf("GroupSnapshot: %d bytes, %v, %v", len(snap), ok, err)
	}
	on := memOpts(vfs.NewMemFS())
	on.GroupRecords = p.records
	fresh := openEngine(t, on)
	mustCreate(t, fresh, "t")
	fill(t, fresh, "t", 3000, 100)
	for _, e := range []*Engine{fresh, p.repl} {
		if err := e.InstallGroupSnapshot(bg, "t", snap); err != nil {
			t.Fatal(err)
		}
	}
	p.repl = fresh
	same("installed from a snapshot")
	p.repl = reopen(t, fresh, on)
	same("installed from a snapshot, restarted")
}
