package realclients

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Promise: a franz-go group consumer (one member holds the topic's one
// partition) reads every record, commits, and a new member of the same
// group after the first left (or after a broker restart) starts from the
// commit, not from the beginning; the commit is the haraqa group's
// committed offset (exclusive mode); DescribeGroups and ListGroups show
// the group.
func TestKgoGroupCommit(t *testing.T) {
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	p := kgoClient(t, b, kgo.DefaultProduceTopic("gt"))
	produce := func(from, n int) {
		for i := from; i < from+n; i++ {
			p.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 100)
	consume := func(n int) []string {
		c := kgoClient(t, b, kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("gt"), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond))
		var got []string
		for len(got) < n {
			fs := c.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("got %d of %d: %v", len(got), n, ctx.Err())
			}
			fs.EachError(func(tp string, pa int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, pa, err) })
			for _, r := range fs.Records() {
				got = append(got, string(r.Value))
			}
		}
		if err := c.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
		c.Close() // leaves the group
		return got
	}
	if got := consume(100); got[0] != "0" || got[99] != "99" {
		t.Fatalf("first member read %v..%v", got[0], got[len(got)-1])
	}
	info, err := b.e.DescribeGroup("gt", "g1")
	if err != nil || info.Committed != 100 || !info.Config.Exclusive {
		t.Fatalf("haraqa group after the commit: %+v %v", info, err)
	}
	produce(100, 50)
	if got := consume(50); got[0] != "100" || len(got) != 50 {
		t.Fatalf("second member started at %v (%d records), want 100", got[0], len(got))
	}
	produce(150, 10)
	b.restart()
	if got := consume(10); got[0] != "150" || len(got) != 10 {
		t.Fatalf("after a restart the group started at %v, want 150", got[0])
	}
	adm := kgoClient(t, b)
	lg, err := kmsg.NewPtrListGroupsRequest().RequestWith(ctx, adm)
	if err != nil || len(lg.Groups) != 1 || lg.Groups[0].Group != "g1" {
		t.Fatalf("ListGroups: %+v %v", lg, err)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g1"}
	dr, err := dg.RequestWith(ctx, adm)
	if err != nil || len(dr.Groups) != 1 || dr.Groups[0].ErrorCode != 0 || dr.Groups[0].State != "Empty" {
		t.Fatalf("DescribeGroups of a group with commits and no members: %+v %v", dr, err)
	}
}

// Promise: in a group of two franz-go members the topic's one partition
// goes to one of them at a time; when the member that committed leaves,
// the other holds the partition and resumes from the commit.
func TestKgoGroupTakeover(t *testing.T) {
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	p := kgoClient(t, b, kgo.DefaultProduceTopic("tk"))
	for i := range 20 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	member := func() *kgo.Client {
		return kgoClient(t, b, kgo.ConsumerGroup("tk-g"), kgo.ConsumeTopics("tk"),
			kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond))
	}
	a := member()
	var got int
	for got < 10 {
		got += len(a.PollRecords(ctx, 10-got).Records())
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
	}
	if err := a.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	bm := member()
	// Wait until both are members of a stable group, and one of them
	// holds the partition.
	adm := kgoClient(t, b)
	for {
		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Groups = []string{"tk-g"}
		dr, err := dg.RequestWith(ctx, adm)
		if err != nil {
			t.Fatal(err)
		}
		g := dr.Groups[0]
		if g.State == "Stable" && len(g.Members) == 2 {
			holders := 0
			for _, m := range g.Members {
				var ma kmsg.ConsumerMemberAssignment
				if ma.ReadFrom(m.MemberAssignment) == nil && len(ma.Topics) == 1 && len(ma.Topics[0].Partitions) == 1 {
					holders++
				}
			}
			if holders != 1 {
				t.Fatalf("%d members hold the one partition", holders)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("group never stable with two members: %+v", g)
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.Close() // leaves: b holds the partition after the rebalance
	rs := bm.PollRecords(ctx, 1).Records()
	if len(rs) != 1 || rs[0].Offset != 10 {
		t.Fatalf("the remaining member read %+v, want offset 10 (the commit)", rs)
	}
}
