package kafka

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Promise: with -auth-file, Kafka group listings do not show other
// clients' groups, as on the native listener: ListGroups names only the
// groups on topics the client may consume (by their commits or their
// members' subscriptions), and DescribeGroups of any other group answers
// GROUP_AUTHORIZATION_FAILED without its members, their ids or their
// assignments (a member id is all LeaveGroup needs to throw a member out).
func TestGroupListingsFiltered(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth.toml")
	conf := "[[client]]\nname = \"owner\"\ntoken-sha256 = \"" + auth.HashToken("own") + "\"\nconsume = [\"secret\"]\n" +
		"[[client]]\nname = \"spy\"\ntoken-sha256 = \"" + auth.HashToken("spy") + "\"\nconsume = [\"logs.*\"]\n"
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.Load(file, "")
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Options{Auth: a})
	for _, n := range []string{"logs.a", "secret"} {
		if err := b.e.CreateTopic(n); err != nil {
			t.Fatal(err)
		}
	}
	// "payroll": Kafka commits on secret (an exclusive haraqa group).
	if _, err := b.e.CreateGroup(context.Background(), "secret", "payroll", engine.GroupConfig{Exclusive: true}); err != nil {
		t.Fatal(err)
	}
	owner, spy := dialRaw(t, b.addr), dialRaw(t, b.addr)
	if owner.sasl("own") != 0 || spy.sasl("spy") != 0 {
		t.Fatal("SASL refused a listed token")
	}
	// "live": a member subscribed to secret, no commits yet.
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType = "live", "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 60_000, 60_000
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"secret"}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", md.AppendTo(nil)
	join.Protocols = append(join.Protocols, p)
	join.SetVersion(5)
	if r := owner.do(join).(*kmsg.JoinGroupResponse); r.ErrorCode != 0 {
		t.Fatalf("JoinGroup: code %d", r.ErrorCode)
	}
	list := func(rc *rawClient) []string {
		var names []string
		for _, g := range rc.do(kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse).Groups {
			names = append(names, g.Group)
		}
		slices.Sort(names)
		return names
	}
	describe := func(rc *rawClient) map[string]kmsg.DescribeGroupsResponseGroup {
		d := kmsg.NewPtrDescribeGroupsRequest()
		d.Groups = []string{"live", "payroll"}
		out := map[string]kmsg.DescribeGroupsResponseGroup{}
		for _, g := range rc.do(d).(*kmsg.DescribeGroupsResponse).Groups {
			out[g.Group] = g
		}
		return out
	}
	if got := list(owner); !slices.Equal(got, []string{"live", "payroll"}) {
		t.Errorf("owner's ListGroups: %v, want [live payroll]", got)
	}
	if got := list(spy); len(got) != 0 {
		t.Errorf("spy's ListGroups: %v, want none", got)
	}
	if d := describe(owner); d["live"].ErrorCode != 0 || len(d["live"].Members) != 1 || d["payroll"].ErrorCode != 0 {
		t.Errorf("owner's DescribeGroups: %+v", d)
	}
	// Joining needs consume on every topic the joiner subscribes to and,
	// for a group that exists, on one of the group's topics: else any
	// client could join a group, force its rebalance and take its
	// partition away from the members.
	for _, c := range []struct {
		group, topic string
		code         int16
	}{{"live", "logs.a", errGroupAuthorization}, {"payroll", "logs.a", errGroupAuthorization}, {"mine", "secret", errGroupAuthorization}, {"mine", "logs.a", errNone}} {
		md.Topics = []string{c.topic}
		join.Protocols[0].Metadata = md.AppendTo(nil)
		join.Group = c.group
		if r := spy.do(join).(*kmsg.JoinGroupResponse); r.ErrorCode != c.code {
			t.Errorf("spy joins %s subscribing to %s: code %d, want %d", c.group, c.topic, r.ErrorCode, c.code)
		}
	}
	// OffsetFetch of all a group's topics names only those it may consume.
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "payroll"
	of.SetVersion(7)
	if r := spy.do(of).(*kmsg.OffsetFetchResponse); len(r.Topics) != 0 {
		t.Errorf("spy's OffsetFetch of payroll's topics: %+v", r.Topics)
	}
	of8 := kmsg.NewPtrOffsetFetchRequest()
	of8.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "payroll"}}
	of8.SetVersion(8)
	if r := spy.do(of8).(*kmsg.OffsetFetchResponse); len(r.Groups) != 1 || len(r.Groups[0].Topics) != 0 {
		t.Errorf("spy's OffsetFetch v8 of payroll's topics: %+v", r.Groups)
	}
	for name, g := range describe(spy) {
		if g.ErrorCode != errGroupAuthorization || len(g.Members) != 0 {
			t.Errorf("spy's DescribeGroups of %s: code %d, %d members shown; want %d, none", name, g.ErrorCode, len(g.Members), errGroupAuthorization)
		}
	}
}

// Promise: a Kafka commit cannot move a haraqa group that is not a Kafka
// group unless the client may admin the topic: natively, seeking a group
// needs admin, and a commit of a group that exists with another
// configuration (a shared work queue) would seek it, skipping or
// redelivering its messages. The Kafka groups' own commits still work
// with consume.
func TestCommitCannotSeekNativeGroup(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth.toml")
	conf := "[[client]]\nname = \"writer\"\ntoken-sha256 = \"" + auth.HashToken("wt") + "\"\nproduce = [\"work\"]\n" +
		"[[client]]\nname = \"reader\"\ntoken-sha256 = \"" + auth.HashToken("rt") + "\"\nconsume = [\"work\"]\n"
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.Load(file, "")
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Options{Auth: a})
	if err := b.e.CreateTopic("work"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.e.CreateGroup(context.Background(), "work", "workers", engine.GroupConfig{MaxDeliveries: 3}); err != nil {
		t.Fatal(err)
	}
	w, r := dialRaw(t, b.addr), dialRaw(t, b.addr)
	if w.sasl("wt") != 0 || r.sasl("rt") != 0 {
		t.Fatal("SASL refused a listed token")
	}
	var recs []testRec
	for range 10 {
		recs = append(recs, testRec{value: "m"})
	}
	if p := w.produce("work", kafkaBatch(t, codecNone, false, -1, -1, -1, recs...)); p.ErrorCode != 0 {
		t.Fatalf("produce: %d", p.ErrorCode)
	}
	commit := func(group string) int16 {
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group, oc.Generation = group, -1
		ot := kmsg.NewOffsetCommitRequestTopic()
		ot.Topic = "work"
		op := kmsg.NewOffsetCommitRequestTopicPartition()
		op.Offset = 8
		ot.Partitions = append(ot.Partitions, op)
		oc.Topics = append(oc.Topics, ot)
		oc.SetVersion(7)
		return r.do(oc).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := commit("workers"); code != errGroupAuthorization {
		t.Errorf("commit to the native group: code %d, want %d", code, errGroupAuthorization)
	}
	if info, err := b.e.DescribeGroup("work", "workers"); err != nil || info.Committed != 0 {
		t.Errorf("native group after a refused commit: committed %d, %v", info.Committed, err)
	}
	if code := commit("kgroup"); code != errNone {
		t.Errorf("commit to a Kafka group: code %d", code)
	}
	if info, err := b.e.DescribeGroup("work", "kgroup"); err != nil || info.Committed != 8 {
		t.Errorf("Kafka group after its commit: committed %d, %v", info.Committed, err)
	}
}
