package engine

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// Concurrent acks share the group-state log's writes and syncs (group
// commit): fewer syncs than acks, each ack still durable when confirmed.
func TestGroupAcksShareSyncs(t *testing.T) {
	fs := vfs.NewMemFS()
	var syncs atomic.Int64
	counting := atomic.Bool{}
	fs.SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && counting.Load() && strings.Contains(name, groupLogPrefix) && strings.HasSuffix(name, ".log") {
			syncs.Add(1)
			time.Sleep(200 * time.Microsecond) // a disk's sync latency
		}
		return nil
	})
	e := openEngine(t, memOpts(fs))
	mustCreate(t, e, "t")
	const members, per = 8, 40
	fill(t, e, "t", members*per, 100)
	mustGroup(t, e, "t", "g", GroupConfig{})
	counting.Store(true)
	var wg sync.WaitGroup
	for range members {
		m := mustJoin(t, e, "t", "g")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				res, err := e.GroupFetch(bg, "t", "g", m, 1, 0)
				if err != nil || len(res.Leases) != 1 {
					t.Errorf("fetch: %v %+v", err, res)
					return
				}
				m.Epoch = res.Epoch
				if err := e.GroupAck(bg, "t", "g", m, leaseRanges(res)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	n := syncs.Load()
	t.Logf("%d acks, %d syncs of the group-state log", members*per, n)
	if n >= members*per {
		t.Fatalf("%d syncs for %d acks: no ack shared a sync", n, members*per)
	}
	if info := mustDescribe(t, e, "t", "g"); info.Committed != members*per {
		t.Fatalf("committed %d", info.Committed)
	}
}

// Past a limit (groups per topic, members per group, messages in flight
// per member) the call fails with ErrGroupLimit and nothing changes; below
// it again, calls succeed.
func TestGroupLimits(t *testing.T) {
	o := memOpts(vfs.NewMemFS())
	o.MaxGroups, o.MaxGroupMembers, o.MaxGroupInFlight = 2, 2, 10
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	fill(t, e, "t", 100, 10)
	mustGroup(t, e, "t", "a", GroupConfig{})
	mustGroup(t, e, "t", "b", GroupConfig{})
	if _, err := e.CreateGroup(bg, "t", "c", GroupConfig{}); !errors.Is(err, ErrGroupLimit) {
		t.Fatalf("third group: %v", err)
	}
	m1, m2 := mustJoin(t, e, "t", "a"), mustJoin(t, e, "t", "a")
	if _, err := e.JoinGroup(bg, "t", "a", ""); !errors.Is(err, ErrGroupLimit) {
		t.Fatalf("third member: %v", err)
	}
	res, err := e.GroupFetch(bg, "t", "a", m1, 100, 0)
	if err != nil || len(res.Leases) != 1 || res.Leases[0].Len() != 10 {
		t.Fatalf("fetch over the in-flight limit: %v %+v", err, res)
	}
	m1.Epoch = res.Epoch
	if _, err := e.GroupFetch(bg, "t", "a", m1, 1, 0); !errors.Is(err, ErrGroupLimit) {
		t.Fatalf("fetch at the in-flight limit: %v", err)
	}
	if res, err := e.GroupFetch(bg, "t", "a", m2, 1, 0); err != nil || len(res.Leases) != 1 {
		t.Fatalf("another member's fetch: %v %+v", err, res)
	}
	if err := e.GroupAck(bg, "t", "a", m1, []OffsetRange{{0, 5}}); err != nil {
		t.Fatal(err)
	}
	if res, err := e.GroupFetch(bg, "t", "a", m1, 100, 0); err != nil || res.Leases[0].Len() != 5 {
		t.Fatalf("fetch after acks: %v %+v", err, res)
	}
	if err := e.DeleteGroup(bg, "t", "b"); err != nil {
		t.Fatal(err)
	}
	mustGroup(t, e, "t", "c", GroupConfig{})
	if err := e.LeaveGroup(bg, "t", "a", m2); err != nil {
		t.Fatal(err)
	}
	mustJoin(t, e, "t", "a")
}

// A nack with a delay holds the messages back for the delay, then any
// member gets them again (delivery count 2); an extend keeps a lease past
// its ack-wait; a member that leaves gives its leases back at once. The
// group runs on a fake clock: how long the test's own steps take on a
// loaded machine moves no deadline.
func TestGroupNackExtendLeave(t *testing.T) {
	clock := newFakeClock(time.Unix(1_700_000_000, 0))
	opts := memOpts(vfs.NewMemFS())
	opts.Now = clock.Now
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	fill(t, e, "t", 30, 10)
	wait := time.Second
	mustGroup(t, e, "t", "g", GroupConfig{AckWait: wait})
	a := mustJoin(t, e, "t", "g")
	res, err := e.GroupFetch(bg, "t", "g", a, 10, 0) // a: [0, 10)
	if err != nil {
		t.Fatal(err)
	}
	a.Epoch = res.Epoch
	// a keeps its leases past the ack-wait by extending them.
	for range 3 {
		clock.Advance(wait / 2)
		if err := e.GroupExtend(bg, "t", "g", a, nil); err != nil {
			t.Fatalf("extend: %v", err)
		}
	}
	if err := e.GroupAck(bg, "t", "g", a, []OffsetRange{{0, 2}}); err != nil {
		t.Fatalf("ack after extends, %v past the fetch: %v", 3*wait/2, err)
	}
	b := mustJoin(t, e, "t", "g") // a member silent for the ack-wait is dropped: join now
	const delay = 200 * time.Millisecond
	if err := e.GroupNack(bg, "t", "g", a, []OffsetRange{{2, 4}}, delay); err != nil {
		t.Fatal(err)
	}
	res, err = e.GroupFetch(bg, "t", "g", b, 100, 0) // the rest, not [2, 4)
	if err != nil || len(res.Leases) != 1 || res.Leases[0].OffsetRange != (OffsetRange{10, 30}) {
		t.Fatalf("fetch during the nack delay: %v %+v", err, res)
	}
	b.Epoch = res.Epoch
	if err := e.GroupAck(bg, "t", "g", b, leaseRanges(res)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(delay - time.Millisecond)
	if res, err := e.GroupFetch(bg, "t", "g", b, 2, 0); err != nil || len(res.Leases) != 0 {
		t.Fatalf("fetch just before the nack delay ends: %v %+v", err, res)
	}
	// A fetch parked meanwhile wakes by itself when the delay is over (it
	// looks again when the nacked messages come due), well before its own
	// 30 s wait.
	type fetched struct {
		res FetchResult
		err error
	}
	parked := make(chan fetched, 1)
	go func() {
		res, err := e.GroupFetch(bg, "t", "g", b, 2, 30*time.Second)
		parked <- fetched{res, err}
	}()
	clock.Advance(time.Millisecond)
	select {
	case f := <-parked:
		res, err = f.res, f.err
	case <-time.After(10 * time.Second):
		t.Fatal("a fetch parked during the nack delay still waits 10 s after it")
	}
	if err != nil || len(res.Leases) != 1 || res.Leases[0].OffsetRange != (OffsetRange{2, 4}) || res.Leases[0].Deliveries != 2 {
		t.Fatalf("fetch after the nack delay: %v %+v", err, res)
	}
	if err := e.LeaveGroup(bg, "t", "g", a); err != nil {
		t.Fatal(err)
	}
	res, err = e.GroupFetch(bg, "t", "g", b, 100, 0)
	if err != nil || len(res.Leases) == 0 || res.Leases[0].OffsetRange != (OffsetRange{4, 10}) {
		t.Fatalf("fetch after a left: %v %+v", err, res)
	}
	if err := e.GroupAck(bg, "t", "g", a, []OffsetRange{{4, 5}}); !errors.Is(err, ErrStaleMember) {
		t.Fatalf("ack of a member that left: %v", err)
	}
}
