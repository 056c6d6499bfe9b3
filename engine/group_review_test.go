package engine

import (
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// ackOneByOne fetches and acks one message at a time, n times.
func ackOneByOne(t *testing.T, e *Engine, topic, group string, m Member, n int) {
	t.Helper()
	for range n {
		res, err := e.GroupFetch(bg, topic, group, m, 1, 0)
		if err != nil || len(res.Leases) != 1 {
			t.Fatalf("fetch: %v %v", res.Leases, err)
		}
		if err := e.GroupAck(bg, topic, group, m, []OffsetRange{res.Leases[0].OffsetRange}); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

// Under fsync=interval a power loss may cost the acks of the last
// interval, never a group's older, synced state: a group never goes back
// past a confirmed ack that was synced, and a group is never lost. A
// compaction of the group-state log must therefore not remove the synced
// records before its snapshot is synced too.
func TestGroupCompactionIntervalPowerLossKeepsSyncedState(t *testing.T) {
	old := compactAfter
	compactAfter = 1 << 10
	t.Cleanup(func() { compactAfter = old })
	fs := vfs.NewMemFS()
	o := memOpts(fs)
	o.Fsync = FsyncInterval
	o.FsyncInterval = time.Hour // nothing synced by the timer during the test
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, e, "t")
	fill(t, e, "t", 1000, 100)
	mustGroup(t, e, "t", "g", GroupConfig{})
	ackOneByOne(t, e, "t", "g", mustJoin(t, e, "t", "g"), 10)
	// A clean close syncs everything: committed 10 is durable.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openEngine(t, o)
	m := mustJoin(t, e, "t", "g")
	lt, err := e.anyTopic(groupLogName("t"))
	if err != nil {
		t.Fatal(err)
	}
	e.gmu.Lock()
	gs := e.gsets["t"]
	e.gmu.Unlock()
	ackOneByOne(t, e, "t", "g", m, 100)
	for deadline := time.Now().Add(10 * time.Second); gs.compacting.Load() || lt.segments()[0].Base() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the state log was never compacted (since %d)", gs.since.Load())
		}
	}

	img := fs.Crash()
	o2 := o
	o2.FS = img
	e2 := openEngine(t, o2)
	info, err := e2.DescribeGroup("t", "g")
	if err != nil {
		t.Fatalf("after a power loss following a compaction: %v", err)
	}
	if info.Committed < 10 {
		t.Fatalf("committed %d after the power loss, below the synced 10", info.Committed)
	}
}

// Under fsync=interval a power loss may take messages of the last interval
// from the topic while the group-state log (synced on its own schedule)
// keeps acks of them. The offsets then go to new messages after the
// restart: an acknowledged message is never hidden, so a group never
// counts those new messages as done.
func TestGroupAckOfLostMessagesHidesNothingAfterPowerLoss(t *testing.T) {
	old := compactAfter
	compactAfter = 1 << 10 // a compaction syncs the state log
	t.Cleanup(func() { compactAfter = old })
	fs := vfs.NewMemFS()
	o := memOpts(fs)
	o.Fsync = FsyncInterval
	o.FsyncInterval = time.Hour // nothing synced by the timer during the test
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, e, "t")
	fill(t, e, "t", 100, 10)
	mustGroup(t, e, "t", "g", GroupConfig{})
	if err := e.Close(); err != nil { // 100 messages and the group synced
		t.Fatal(err)
	}

	e = openEngine(t, o)
	fill(t, e, "t", 200, 10) // offsets 100..299: not synced
	lt, err := e.anyTopic(groupLogName("t"))
	if err != nil {
		t.Fatal(err)
	}
	e.gmu.Lock()
	gs := e.gsets["t"]
	e.gmu.Unlock()
	ackOneByOne(t, e, "t", "g", mustJoin(t, e, "t", "g"), 300)
	for deadline := time.Now().Add(10 * time.Second); gs.compacting.Load() || lt.segments()[0].Base() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the state log was never compacted (since %d)", gs.since.Load())
		}
	}

	img := fs.Crash()
	o2 := o
	o2.FS = img
	e2 := openEngine(t, o2)
	_, end, err := e2.Offsets("t")
	if err != nil {
		t.Fatal(err)
	}
	if end != 100 {
		t.Fatalf("topic end %d after the power loss, want the synced 100", end)
	}
	// New messages, acknowledged to their producer, take offsets 100...
	fill(t, e2, "t", 50, 10)
	done := doneSet(t, e2, "t", "g", 150)
	for off := 100; off < 150; off++ {
		if done[off] {
			t.Fatalf("offset %d, appended after the restart and never acked, is done for the group", off)
		}
	}
	// Taken back durably: once the topic is past the old acks again, a
	// restart still counts none of the new messages as done.
	fill(t, e2, "t", 150, 10)
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	e3 := openEngine(t, o2)
	done = doneSet(t, e3, "t", "g", 300)
	for off := 100; off < 300; off++ {
		if done[off] {
			t.Fatalf("offset %d, appended after the power loss and never acked, is done for the group after a second restart", off)
		}
	}
}
