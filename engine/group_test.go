package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

var bg = context.Background()

// fill appends n small messages to topic in batches of per.
func fill(t testing.TB, e *Engine, topic string, n, per int) {
	t.Helper()
	for i := 0; i < n; i += per {
		k := min(per, n-i)
		msgs := make([][]byte, k)
		for j := range msgs {
			msgs[j] = []byte("m")
		}
		mustAppend(t, e, topic, batchOf(t, msgs...))
	}
}

func mustGroup(t testing.TB, e *Engine, topic, name string, cfg GroupConfig) {
	t.Helper()
	if _, err := e.CreateGroup(bg, topic, name, cfg); err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
}

func mustJoin(t testing.TB, e *Engine, topic, name string) Member {
	t.Helper()
	m, err := e.JoinGroup(bg, topic, name, "")
	if err != nil {
		t.Fatalf("JoinGroup: %v", err)
	}
	return m
}

func mustDescribe(t testing.TB, e *Engine, topic, name string) GroupInfo {
	t.Helper()
	info, err := e.DescribeGroup(topic, name)
	if err != nil {
		t.Fatalf("DescribeGroup: %v", err)
	}
	return info
}

func leaseRanges(res FetchResult) []OffsetRange {
	var rs []OffsetRange
	for _, l := range res.Leases {
		rs = append(rs, l.OffsetRange)
	}
	return rs
}

// A member that dies holding leases loses them after the ack-wait: the
// messages are delivered to another member, nothing is lost, and the dead
// member's late ack is refused. B is dropped too if it is silent for the
// ack-wait between its calls, so the ack-wait is a second: a loaded
// machine can stall the test for a few hundred ms.
func TestGroupDeadMemberRedelivered(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	fill(t, e, "t", 1000, 100)
	mustGroup(t, e, "t", "g", GroupConfig{AckWait: time.Second})
	a, b := mustJoin(t, e, "t", "g"), mustJoin(t, e, "t", "g")
	resA, err := e.GroupFetch(bg, "t", "g", a, 300, 0)
	if err != nil || len(resA.Leases) == 0 {
		t.Fatalf("A fetch: %v %+v", err, resA)
	}
	// A dies: no ack, no call. B works until everything is done.
	done := make([]int, 1000)
	redelivered := 0
	deadline := time.Now().Add(20 * time.Second)
	for mustDescribe(t, e, "t", "g").Committed < 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("not done: %+v", mustDescribe(t, e, "t", "g"))
		}
		// B's fetch waits longer than the ack-wait: it is woken when A's
		// leases lapse (a wait ending with them would take them first).
		res, err := e.GroupFetch(bg, "t", "g", b, 500, 5*time.Second)
		if err != nil {
			t.Fatalf("B fetch: %v", err)
		}
		b.Epoch = res.Epoch
		for _, l := range res.Leases {
			if l.Deliveries > 1 {
				redelivered += int(l.Len())
			}
			for o := l.First; o < l.Next; o++ {
				done[o]++
			}
		}
		if len(res.Leases) > 0 {
			if err := e.GroupAck(bg, "t", "g", b, leaseRanges(res)); err != nil {
				t.Fatalf("B ack: %v", err)
			}
		}
	}
	for o, c := range done {
		if c != 1 {
			t.Fatalf("offset %d acked by B %d times", o, c)
		}
	}
	if redelivered != 300 {
		t.Fatalf("%d messages redelivered, want A's 300", redelivered)
	}
	// A's own silence outlasts its leases by the time its fetch took to
	// return; past that it is dropped, and its late ack is refused.
	time.Sleep(200 * time.Millisecond)
	err = e.GroupAck(bg, "t", "g", a, leaseRanges(resA))
	if !errors.Is(err, ErrStaleMember) {
		t.Fatalf("dead member's late ack: %v, want ErrStaleMember", err)
	}
	if info := mustDescribe(t, e, "t", "g"); info.Expired == 0 || info.Redeliveries != 300 {
		t.Fatalf("counters: %+v", info)
	}
}

// Exclusive mode: one member at a time, strict order, a standby takes
// over soon after the ack-wait from the holder dying, and the stale holder's
// ack is refused.
func TestGroupExclusiveTakeover(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	fill(t, e, "t", 100, 10)
	// A holder silent for the ack-wait loses the group; the test's own
	// steps on A must come within it, so it is a second (a loaded machine
	// can stall the test for a few hundred ms).
	wait := time.Second
	mustGroup(t, e, "t", "g", GroupConfig{Exclusive: true, AckWait: wait})
	a, b := mustJoin(t, e, "t", "g"), mustJoin(t, e, "t", "g")
	resA, err := e.GroupFetch(bg, "t", "g", a, 30, 0)
	if err != nil || len(resA.Leases) != 1 || resA.Leases[0].OffsetRange != (OffsetRange{0, 30}) {
		t.Fatalf("A fetch: %v %+v", err, resA)
	}
	a.Epoch = resA.Epoch
	if res, err := e.GroupFetch(bg, "t", "g", b, 30, 0); err != nil || !res.Standby || len(res.Leases) != 0 {
		t.Fatalf("standby fetch: %v %+v", err, res)
	}
	if err := e.GroupAck(bg, "t", "g", a, []OffsetRange{{0, 10}}); err != nil {
		t.Fatalf("A ack: %v", err)
	}
	died := time.Now() // A goes silent holding [10, 30)
	// The standby's parked fetch is woken when the holder's ack-wait ends,
	// not when its own 30 s wait does (the margin is for a loaded machine).
	res, err := e.GroupFetch(bg, "t", "g", b, 1000, wait+30*time.Second)
	took := time.Since(died)
	if err != nil || len(res.Leases) == 0 {
		t.Fatalf("B takeover fetch: %v %+v", err, res)
	}
	if took > wait+10*time.Second {
		t.Fatalf("takeover after %v, want soon after the ack-wait %v, long before the fetch's wait", took, wait)
	}
	if res.Epoch <= a.Epoch {
		t.Fatalf("epoch %d after takeover, was %d", res.Epoch, a.Epoch)
	}
	if res.Leases[0].First != 10 {
		t.Fatalf("B starts at %d, want 10 (strict order)", res.Leases[0].First)
	}
	next := uint64(10)
	for _, l := range res.Leases {
		if l.First != next {
			t.Fatalf("leases out of order: %+v", res.Leases)
		}
		next = l.Next
	}
	if err := e.GroupAck(bg, "t", "g", a, []OffsetRange{{10, 30}}); !errors.Is(err, ErrStaleMember) {
		t.Fatalf("stale holder's ack: %v, want ErrStaleMember", err)
	}
	b.Epoch = res.Epoch
	// A nack in exclusive mode sends the stream back to the nacked offset.
	if err := e.GroupNack(bg, "t", "g", b, []OffsetRange{{40, 41}}, 0); err != nil {
		t.Fatalf("nack: %v", err)
	}
	res2, err := e.GroupFetch(bg, "t", "g", b, 1000, 0)
	if err != nil || len(res2.Leases) == 0 || res2.Leases[0].First != 40 {
		t.Fatalf("after nack: %v %+v", err, res2)
	}
	if err := e.GroupAckUpTo(bg, "t", "g", b, 100); err != nil {
		t.Fatalf("ack up to: %v", err)
	}
	if info := mustDescribe(t, e, "t", "g"); info.Committed != 100 || info.Lag != 0 {
		t.Fatalf("after ack up to 100: %+v", info)
	}
}

// When retention removes messages a group has not done, the group moves
// to the topic's start and counts them as skipped, durably.
func TestGroupRetentionPasses(t *testing.T) {
	fs := vfs.NewMemFS()
	o := memOpts(fs)
	o.SegmentEntries = 10
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	fill(t, e, "t", 100, 5) // 20 batches: 2 segments of 10 batches
	mustGroup(t, e, "t", "g", GroupConfig{})
	m := mustJoin(t, e, "t", "g")
	res, err := e.GroupFetch(bg, "t", "g", m, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Epoch = res.Epoch
	if err := e.GroupAck(bg, "t", "g", m, []OffsetRange{{0, 5}}); err != nil {
		t.Fatal(err)
	}
	start, err := e.TruncateBefore(bg, "t", 60)
	if err != nil || start != 50 {
		t.Fatalf("truncate: %d %v", start, err)
	}
	info := mustDescribe(t, e, "t", "g")
	if info.Committed != 50 || info.Skipped != 45 || info.Lag != 50 {
		t.Fatalf("after retention: %+v", info)
	}
	res, err = e.GroupFetch(bg, "t", "g", m, 10, 0)
	if err != nil || len(res.Leases) == 0 || res.Leases[0].First != 50 {
		t.Fatalf("fetch after retention: %v %+v", err, res)
	}
	e = reopen(t, e, o)
	if info := mustDescribe(t, e, "t", "g"); info.Committed != 50 || info.Skipped != 45 {
		t.Fatalf("after restart: %+v", info)
	}
}

// Bad input gets a clear error and changes nothing.
func TestGroupBadInput(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	fill(t, e, "t", 100, 10)
	mustGroup(t, e, "t", "g", GroupConfig{})
	mustGroup(t, e, "t", "h", GroupConfig{})
	m := mustJoin(t, e, "t", "g")
	mh := mustJoin(t, e, "t", "h")
	other := mustJoin(t, e, "t", "g")
	res, err := e.GroupFetch(bg, "t", "g", m, 10, 0) // m holds [0, 10)
	if err != nil {
		t.Fatal(err)
	}
	m.Epoch = res.Epoch
	if _, err := e.GroupFetch(bg, "t", "g", other, 10, 0); err != nil { // other holds [10, 20)
		t.Fatal(err)
	}
	if _, err := e.GroupFetch(bg, "t", "h", mh, 50, 0); err != nil { // h's member holds [0, 50) of h
		t.Fatal(err)
	}
	before := mustDescribe(t, e, "t", "g")
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"never delivered", func() error { return e.GroupAck(bg, "t", "g", m, []OffsetRange{{30, 31}}) }, ErrNotLeased},
		{"leased to another member", func() error { return e.GroupAck(bg, "t", "g", m, []OffsetRange{{10, 11}}) }, ErrNotLeased},
		{"another group's member", func() error { return e.GroupAck(bg, "t", "g", mh, []OffsetRange{{0, 1}}) }, ErrStaleMember},
		{"another group's offsets", func() error { return e.GroupAck(bg, "t", "g", m, []OffsetRange{{0, 50}}) }, ErrNotLeased},
		{"stale epoch", func() error {
			return e.GroupAck(bg, "t", "g", Member{ID: m.ID, Epoch: m.Epoch + 7}, []OffsetRange{{0, 1}})
		}, ErrStaleMember},
		{"unknown member", func() error { return e.GroupAck(bg, "t", "g", Member{ID: 12345}, []OffsetRange{{0, 1}}) }, ErrStaleMember},
		{"huge range", func() error { return e.GroupAck(bg, "t", "g", m, []OffsetRange{{0, 1 << 63}}) }, ErrNotLeased},
		{"inverted range", func() error { return e.GroupAck(bg, "t", "g", m, []OffsetRange{{5, 2}}) }, ErrBadGroupRequest},
		{"too many ranges", func() error { return e.GroupAck(bg, "t", "g", m, make([]OffsetRange, MaxGroupRanges+1)) }, ErrGroupLimit},
		{"unknown group", func() error { return e.GroupAck(bg, "t", "nope", m, []OffsetRange{{0, 1}}) }, ErrGroupNotFound},
		{"unknown group fetch", func() error { _, err := e.GroupFetch(bg, "t", "nope", m, 1, 0); return err }, ErrGroupNotFound},
		{"unknown topic", func() error { _, err := e.DescribeGroup("nope", "g"); return err }, ErrTopicNotFound},
		{"internal topic name", func() error { _, err := e.DescribeGroup("~g.t", "g"); return err }, ErrBadTopicName},
		{"nack not leased", func() error { return e.GroupNack(bg, "t", "g", m, []OffsetRange{{10, 12}}, 0) }, ErrNotLeased},
		{"extend never delivered", func() error { return e.GroupExtend(bg, "t", "g", m, []OffsetRange{{90, 99}}) }, ErrNotLeased},
		{"bad group name", func() error { _, err := e.CreateGroup(bg, "t", "../x", GroupConfig{}); return err }, ErrBadGroupRequest},
		{"different config", func() error { _, err := e.CreateGroup(bg, "t", "g", GroupConfig{Exclusive: true}); return err }, ErrGroupExists},
		{"bad ack wait", func() error { _, err := e.CreateGroup(bg, "t", "x", GroupConfig{AckWait: time.Nanosecond}); return err }, ErrBadGroupRequest},
		{"fetch zero", func() error { _, err := e.GroupFetch(bg, "t", "g", m, 0, 0); return err }, ErrBadGroupRequest},
	}
	for _, c := range cases {
		if err := c.call(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	after := mustDescribe(t, e, "t", "g")
	if after.Committed != before.Committed || after.InFlight != before.InFlight || after.AckedAbove != before.AckedAbove || after.Epoch != before.Epoch {
		t.Fatalf("state changed: before %+v after %+v", before, after)
	}
	// And the group still serves: the real ack works.
	if err := e.GroupAck(bg, "t", "g", m, []OffsetRange{{0, 10}}); err != nil {
		t.Fatalf("good ack: %v", err)
	}
	if err := e.GroupAck(bg, "t", "g", m, []OffsetRange{{0, 10}}); err != nil {
		t.Fatalf("retried ack: %v", err)
	}
	if _, err := e.CreateGroup(bg, "t", "g", GroupConfig{}); err != nil {
		t.Fatalf("same config again: %v", err)
	}
	if got := mustDescribe(t, e, "t", "g").Committed; got != 10 {
		t.Fatalf("committed %d after good ack", got)
	}
}
