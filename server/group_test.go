package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// groupPeer is a raw-socket member of one group.
type groupPeer struct {
	*peer
	t            testing.TB
	group, topic string
	id, epoch    uint64
}

func (p *peer) mustJoin(t testing.TB, group, topic string, req netproto.GroupJoinRequest) *groupPeer {
	t.Helper()
	req.Group, req.Topic = []byte(group), []byte(topic)
	var resp netproto.GroupJoinResponse
	p.mustCall(t, netproto.OpGroupJoin, &req, &resp)
	return &groupPeer{peer: p, t: t, group: group, topic: topic, id: resp.MemberID, epoch: resp.MemberEpoch}
}

// fetch leases up to max messages and returns the response (ranges and
// batches copied) with the messages at the leased offsets.
func (g *groupPeer) fetch(max uint32) (netproto.GroupFetchResponse, []message, error) {
	var resp netproto.GroupFetchResponse
	req := netproto.GroupFetchRequest{MemberID: g.id, MemberEpoch: g.epoch, MaxMessages: max, Group: []byte(g.group), Topic: []byte(g.topic)}
	if err := g.callInto(netproto.OpGroupFetch, &req, &resp); err != nil {
		return resp, nil, err
	}
	resp.Ranges = append([]netproto.LeasedRange(nil), resp.Ranges...)
	resp.Batches = append([]byte(nil), resp.Batches...)
	g.epoch = resp.MemberEpoch
	all, err := decodeBatches(resp.Batches)
	if err != nil {
		return resp, nil, err
	}
	var leased []message
	for _, m := range all {
		for _, r := range resp.Ranges {
			if m.off >= r.First && m.off < r.End() {
				leased = append(leased, m)
			}
		}
	}
	var want uint64
	for _, r := range resp.Ranges {
		want += uint64(r.Count)
	}
	if uint64(len(leased)) != want {
		return resp, leased, fmt.Errorf("%d leased offsets, %d of them in the batches", want, len(leased))
	}
	return resp, leased, nil
}

func (g *groupPeer) mustFetch(max uint32) (netproto.GroupFetchResponse, []message) {
	g.t.Helper()
	resp, msgs, err := g.fetch(max)
	if err != nil {
		g.t.Fatalf("fetch: %v", err)
	}
	return resp, msgs
}

func (g *groupPeer) ack(op netproto.Opcode, ranges ...netproto.AckRange) error {
	req := netproto.GroupAckRequest{MemberID: g.id, MemberEpoch: g.epoch, Ranges: ranges, Group: []byte(g.group), Topic: []byte(g.topic)}
	_, err := g.call(op, &req)
	return err
}

func (g *groupPeer) nack(delayMS uint32, ranges ...netproto.AckRange) error {
	req := netproto.GroupNackRequest{MemberID: g.id, MemberEpoch: g.epoch, DelayMillis: delayMS, Ranges: ranges, Group: []byte(g.group), Topic: []byte(g.topic)}
	_, err := g.call(netproto.OpGroupNack, &req)
	return err
}

func (p *peer) describe(group, topic string) (netproto.GroupDescribeResponse, error) {
	var resp netproto.GroupDescribeResponse
	err := p.callInto(netproto.OpGroupDescribe, &netproto.GroupRequest{Group: []byte(group), Topic: []byte(topic)}, &resp)
	resp.DeadLetter = append([]byte(nil), resp.DeadLetter...)
	for i := range resp.Members {
		resp.Members[i].Name = append([]byte(nil), resp.Members[i].Name...)
	}
	resp.Members = append([]netproto.GroupMember(nil), resp.Members...)
	return resp, err
}

func (p *peer) mustDescribe(t testing.TB, group, topic string) netproto.GroupDescribeResponse {
	t.Helper()
	d, err := p.describe(group, topic)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	return d
}

func offsetsOf(ms []message) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.off)
	}
	return out
}

// produceRange produces the messages "m<from>".."m<to-1>" in batches of per.
func produceRange(t testing.TB, p *peer, topic string, from, to, per int) {
	t.Helper()
	for i := from; i < to; i += per {
		var ms []string
		for j := i; j < min(i+per, to); j++ {
			ms = append(ms, fmt.Sprintf("m%d", j))
		}
		p.mustProduce(t, topic, batchOf(t, ms...))
	}
}

// TestGroupOverTheWire: a group's whole life over the protocol, on both
// networks and both ways of sending batch bytes: create and join, fetch
// (leased ranges with delivery counts, the batches holding exactly those
// offsets), ack, nack (the nacked offsets come again, counted, in a fetch
// whose ranges are not contiguous), extend, commit (everything up to N),
// describe, list, seek, leave and delete.
func TestGroupOverTheWire(t *testing.T) {
	for _, network := range networks {
		for _, mode := range modes {
			t.Run(network+"/"+modeName(mode), func(t *testing.T) {
				e := openEngine(t, engine.Options{})
				ts := startServer(t, e, network, Options{ConsumeMode: mode})
				p := mustDial(t, ts, "")
				p.mustCall(t, netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: []byte("work")}, nil)
				produceRange(t, p, "work", 0, 30, 7) // batches of 7: ranges cut across them

				var joined netproto.GroupJoinResponse
				p.mustCall(t, netproto.OpGroupJoin, &netproto.GroupJoinRequest{Group: []byte("g"), Topic: []byte("work"), Flags: netproto.JoinCreate, AckWaitMillis: 60000, MemberName: []byte("tester")}, &joined)
				if joined.Flags&netproto.JoinedCreated == 0 || joined.AckWaitMillis != 60000 || joined.Committed != 0 {
					t.Fatalf("join: %+v", joined)
				}
				g := &groupPeer{peer: p, t: t, group: "g", topic: "work", id: joined.MemberID, epoch: joined.MemberEpoch}

				resp, msgs := g.mustFetch(10)
				if len(resp.Ranges) != 1 || resp.Ranges[0] != (netproto.LeasedRange{First: 0, Count: 10, Deliveries: 1}) || resp.End != 30 {
					t.Fatalf("first fetch: ranges %+v end %d", resp.Ranges, resp.End)
				}
				for i, m := range msgs {
					if m.off != uint64(i) || m.val != fmt.Sprintf("m%d", i) {
						t.Fatalf("message %d: %+v", i, m)
					}
				}
				if err := g.ack(netproto.OpGroupAck, netproto.AckRange{First: 0, Count: 2}, netproto.AckRange{First: 3, Count: 4}); err != nil {
					t.Fatal(err)
				}
				if err := g.nack(0, netproto.AckRange{First: 2, Count: 1}, netproto.AckRange{First: 8, Count: 1}); err != nil {
					t.Fatal(err)
				}
				if err := g.ack(netproto.OpGroupExtend); err != nil { // every lease: 7, 9
					t.Fatal(err)
				}
				d := p.mustDescribe(t, "g", "work")
				if d.Committed != 2 || d.InFlight != 2 || d.Acked != 4 || d.Lag != 24 || len(d.Members) != 1 || string(d.Members[0].Name) != "tester" {
					t.Fatalf("describe: %+v", d)
				}

				resp, msgs = g.mustFetch(4)
				if len(resp.Ranges) != 3 || resp.Ranges[0] != (netproto.LeasedRange{First: 2, Count: 1, Deliveries: 2}) ||
					resp.Ranges[1] != (netproto.LeasedRange{First: 8, Count: 1, Deliveries: 2}) || resp.Ranges[2].First != 10 || resp.Ranges[2].Count != 2 {
					t.Fatalf("fetch after a nack: ranges %+v", resp.Ranges)
				}
				if got := fmt.Sprint(offsetsOf(msgs)); got != "[2 8 10 11]" {
					t.Fatalf("fetch after a nack: offsets %s", got)
				}
				commit := netproto.GroupCommitRequest{MemberID: g.id, MemberEpoch: g.epoch, Offset: 12, Group: []byte("g"), Topic: []byte("work")}
				p.mustCall(t, netproto.OpGroupCommit, &commit, &netproto.GroupAckResponse{})
				if d := p.mustDescribe(t, "g", "work"); d.Committed != 12 || d.InFlight != 0 {
					t.Fatalf("after commit up to 12: %+v", d)
				}

				var list netproto.GroupListResponse
				p.mustCall(t, netproto.OpGroupList, &netproto.GroupListRequest{}, &list)
				if len(list.Groups) != 1 || string(list.Groups[0].Group) != "g" || string(list.Groups[0].Topic) != "work" || list.Groups[0].Committed != 12 || list.Groups[0].Members != 1 {
					t.Fatalf("list: %+v", list.Groups)
				}

				var seek netproto.GroupSeekResponse
				p.mustCall(t, netproto.OpGroupSeek, &netproto.GroupSeekRequest{Kind: netproto.StartOffset, Value: 25, Group: []byte("g"), Topic: []byte("work")}, &seek)
				if seek.Committed != 25 {
					t.Fatalf("seek to 25: committed %d", seek.Committed)
				}
				// The member fetches again under the new epoch, from 25.
				resp, msgs = g.mustFetch(100)
				if got := fmt.Sprint(offsetsOf(msgs)); got != "[25 26 27 28 29]" {
					t.Fatalf("fetch after the seek: %s (ranges %+v)", got, resp.Ranges)
				}
				p.mustCall(t, netproto.OpGroupLeave, &netproto.GroupLeaveRequest{MemberID: g.id, MemberEpoch: g.epoch, Group: []byte("g"), Topic: []byte("work")}, &netproto.GroupLeaveResponse{})
				if d := p.mustDescribe(t, "g", "work"); d.InFlight != 0 || len(d.Members) != 0 {
					t.Fatalf("after leave: %+v", d)
				}
				p.mustCall(t, netproto.OpGroupDelete, &netproto.GroupRequest{Group: []byte("g"), Topic: []byte("work")}, &netproto.GroupDeleteResponse{})
				_, err := p.describe("g", "work")
				wantCode(t, err, netproto.CodeGroupNotFound)
			})
		}
	}
}

// TestGroupBadInput: requests a member has no right to make, or that name
// things that are not there, get a clear error of their own, change
// nothing in the group, and the connection and broker keep serving: acks
// of offsets never delivered, of another group's offsets, from a stale
// member, with huge ranges or too many ranges, for unknown groups and
// topics, with bad names, or a join whose configuration differs.
func TestGroupBadInput(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{})
	p := mustDial(t, ts, "")
	p.mustCall(t, netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: []byte("work")}, nil)
	produceRange(t, p, "work", 0, 50, 10)
	a := p.mustJoin(t, "a", "work", netproto.GroupJoinRequest{Flags: netproto.JoinCreate})
	b := mustDial(t, ts, "").mustJoin(t, "b", "work", netproto.GroupJoinRequest{Flags: netproto.JoinCreate})
	a.mustFetch(10) // a holds 0..9
	if err := a.ack(netproto.OpGroupAck, netproto.AckRange{First: 0, Count: 3}); err != nil {
		t.Fatal(err)
	}
	b.mustFetch(5) // b holds 0..4 of its own group
	before := p.mustDescribe(t, "a", "work")

	stale := *a
	stale.epoch = a.epoch + 7
	otherGroup := *a
	otherGroup.group = "b"
	unknown := *a
	unknown.group = "nope"
	noTopic := *a
	noTopic.topic = "missing"
	badName := *a
	badName.group = "../etc"
	many := make([]netproto.AckRange, engine.MaxGroupRanges+1)
	for i := range many {
		many[i] = netproto.AckRange{First: uint64(2 * i), Count: 1}
	}
	cases := []struct {
		name string
		do   func() error
		code netproto.Code
	}{
		{"ack of offsets never delivered", func() error { return a.ack(netproto.OpGroupAck, netproto.AckRange{First: 40, Count: 2}) }, netproto.CodeNotLeased},
		{"ack of leased and undelivered offsets together", func() error {
			return a.ack(netproto.OpGroupAck, netproto.AckRange{First: 5, Count: 1}, netproto.AckRange{First: 30, Count: 1})
		}, netproto.CodeNotLeased},
		{"ack of a huge range", func() error { return a.ack(netproto.OpGroupAck, netproto.AckRange{First: 3, Count: 1<<32 - 1}) }, netproto.CodeNotLeased},
		{"ack of more ranges than a request may hold", func() error { return a.ack(netproto.OpGroupAck, many...) }, netproto.CodeGroupLimit},
		{"nack of more ranges than a request may hold", func() error { return a.nack(0, many...) }, netproto.CodeGroupLimit},
		{"nack of offsets never delivered", func() error { return a.nack(0, netproto.AckRange{First: 45, Count: 1}) }, netproto.CodeNotLeased},
		{"extend of offsets never delivered", func() error { return a.ack(netproto.OpGroupExtend, netproto.AckRange{First: 45, Count: 1}) }, netproto.CodeNotLeased},
		{"ack from a stale epoch", func() error { return stale.ack(netproto.OpGroupAck, netproto.AckRange{First: 5, Count: 1}) }, netproto.CodeStaleMember},
		{"ack in another group", func() error { return otherGroup.ack(netproto.OpGroupAck, netproto.AckRange{First: 5, Count: 1}) }, netproto.CodeStaleMember},
		{"ack in an unknown group", func() error { return unknown.ack(netproto.OpGroupAck, netproto.AckRange{First: 5, Count: 1}) }, netproto.CodeGroupNotFound},
		{"fetch in an unknown group", func() error { _, _, err := unknown.fetch(1); return err }, netproto.CodeGroupNotFound},
		{"fetch on a missing topic", func() error { _, _, err := noTopic.fetch(1); return err }, netproto.CodeTopicNotFound},
		{"ack with a bad group name", func() error { return badName.ack(netproto.OpGroupAck, netproto.AckRange{First: 5, Count: 1}) }, netproto.CodeBadTopicName},
		{"describe of an unknown group", func() error { _, err := p.describe("nope", "work"); return err }, netproto.CodeGroupNotFound},
		{"seek of an unknown group", func() error {
			_, err := p.call(netproto.OpGroupSeek, &netproto.GroupSeekRequest{Group: []byte("nope"), Topic: []byte("work")})
			return err
		}, netproto.CodeGroupNotFound},
		{"delete of an unknown group", func() error {
			_, err := p.call(netproto.OpGroupDelete, &netproto.GroupRequest{Group: []byte("nope"), Topic: []byte("work")})
			return err
		}, netproto.CodeGroupNotFound},
		{"join without create of an unknown group", func() error {
			_, err := p.call(netproto.OpGroupJoin, &netproto.GroupJoinRequest{Group: []byte("nope"), Topic: []byte("work")})
			return err
		}, netproto.CodeGroupNotFound},
		{"join with another mode", func() error {
			_, err := p.call(netproto.OpGroupJoin, &netproto.GroupJoinRequest{Group: []byte("a"), Topic: []byte("work"), Flags: netproto.JoinCreate | netproto.JoinExclusive})
			return err
		}, netproto.CodeGroupConfigMismatch},
		{"join with another ack-wait", func() error {
			_, err := p.call(netproto.OpGroupJoin, &netproto.GroupJoinRequest{Group: []byte("a"), Topic: []byte("work"), AckWaitMillis: 1234})
			return err
		}, netproto.CodeGroupConfigMismatch},
		{"leave of an unknown member", func() error {
			_, err := p.call(netproto.OpGroupLeave, &netproto.GroupLeaveRequest{MemberID: 12345, Group: []byte("a"), Topic: []byte("work")})
			return err
		}, netproto.CodeStaleMember},
	}
	for _, c := range cases {
		err := c.do()
		var pe *netproto.Error
		if !errors.As(err, &pe) || pe.Code != c.code {
			t.Errorf("%s: %v, want %v", c.name, err, c.code)
			continue
		}
		if pe.Message == "" {
			t.Errorf("%s: an error without a message", c.name)
		}
	}
	after := p.mustDescribe(t, "a", "work")
	if after.Committed != before.Committed || after.InFlight != before.InFlight || after.Acked != before.Acked || after.Epoch != before.Epoch {
		t.Fatalf("refused requests changed the group: before %+v\nafter %+v", before, after)
	}
	// The member and the connection go on.
	if err := a.ack(netproto.OpGroupAck, netproto.AckRange{First: 3, Count: 7}); err != nil {
		t.Fatalf("a valid ack after the refusals: %v", err)
	}
	if d := p.mustDescribe(t, "a", "work"); d.Committed != 10 {
		t.Fatalf("committed %d after acking 0..9", d.Committed)
	}
	if d := p.mustDescribe(t, "b", "work"); d.Committed != 0 || d.InFlight != 5 {
		t.Fatalf("group b changed by a's requests: %+v", d)
	}
}

// TestGroupMalformedBodiesEndTheConnection: a group request whose body
// does not decode (a range count past the body, overlapping ranges) is
// answered Malformed and ends that connection only; the broker serves the
// next one.
func TestGroupMalformedBodiesEndTheConnection(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{})
	bodies := map[string][]byte{
		"count past the body": {1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x0f},
		"overlapping ranges": (&netproto.GroupAckRequest{Ranges: []netproto.AckRange{{First: 1, Count: 5}, {First: 2, Count: 1}},
			Group: []byte("g"), Topic: []byte("t")}).AppendTo(nil),
	}
	for name, body := range bodies {
		p := mustDial(t, ts, "")
		h := netproto.Header{BodyLen: uint32(len(body)), Opcode: netproto.OpGroupAck, RequestID: 1}
		p.mustWrite(t, append(h.AppendTo(nil), body...))
		if e := expectRefused(t, p, netproto.CodeMalformed); e.Message == "" {
			t.Errorf("%s: no message", name)
		}
	}
	p := mustDial(t, ts, "")
	p.mustCall(t, netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: []byte("after")}, nil)
}

// TestGroupFetchPastMaxBody: a fetch whose leased messages do not fit in
// one response frame (the server's MaxBody) sends what fits and gives the
// rest back at once, so that the next fetch gets them instead of their
// waiting out the ack-wait; nothing stays leased without being sent.
func TestGroupFetchPastMaxBody(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{MaxBody: 1 << 10})
	p := mustDial(t, ts, "")
	p.mustCall(t, netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: []byte("work")}, nil)
	big := strings.Repeat("x", 300)
	for i := range 8 { // eight batches of about 400 bytes: two fit in a frame
		p.mustProduce(t, "work", batchOf(t, fmt.Sprintf("m%d", i), big))
	}
	g := p.mustJoin(t, "g", "work", netproto.GroupJoinRequest{Flags: netproto.JoinCreate, AckWaitMillis: 60000})
	var got []uint64
	for range 8 {
		var resp netproto.GroupFetchResponse
		req := netproto.GroupFetchRequest{MemberID: g.id, MemberEpoch: g.epoch, MaxMessages: 16, Group: []byte("g"), Topic: []byte("work")}
		p.mustCall(t, netproto.OpGroupFetch, &req, &resp)
		msgs, err := decodeBatches(resp.Batches)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 || len(msgs) == 16 || len(resp.Batches) > 1<<10 {
			t.Fatalf("fetch of 16 leased messages past MaxBody: %d messages in %d batch bytes", len(msgs), len(resp.Batches))
		}
		if d := p.mustDescribe(t, "g", "work"); d.InFlight != uint64(len(got)+len(msgs)) {
			t.Fatalf("%d in flight after a fetch that sent %d (%d before): the unsent were not given back", d.InFlight, len(msgs), len(got))
		}
		for _, m := range msgs {
			got = append(got, m.off)
		}
		if len(got) == 16 {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(offsetsOf(engineMessages(t, e, "work"))) {
		t.Fatalf("fetched %v", got)
	}
}

// TestGroupPermissions: with per-client permissions, a client may use the
// groups of the topics it may consume (join, fetch, ack, describe) and no
// others, may name a dead-letter topic only if it may produce to it, needs
// admin to seek or delete a group, and lists only the groups of topics it
// may consume; a refusal is Unauthorized and the connection goes on.
func TestGroupPermissions(t *testing.T) {
	dir := t.TempDir()
	tok := func(s string) string { return auth.HashToken(s) }
	file := filepath.Join(dir, "auth.toml")
	rules := `
[[client]]
name = "worker"
token-sha256 = "` + tok("worker") + `"
consume = ["work"]

[[client]]
name = "ops"
token-sha256 = "` + tok("ops") + `"
consume = ["*"]
produce = ["*"]
admin = ["*"]
`
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.Load(file, "")
	if err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{Auth: a})
	ops := mustDial(t, ts, "ops")
	for _, topic := range []string{"work", "secret", "dead"} {
		ops.mustCall(t, netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: []byte(topic)}, nil)
		produceRange(t, ops, topic, 0, 10, 10)
	}
	ops.mustJoin(t, "g", "secret", netproto.GroupJoinRequest{Flags: netproto.JoinCreate})

	w := mustDial(t, ts, "worker")
	g := w.mustJoin(t, "g", "work", netproto.GroupJoinRequest{Flags: netproto.JoinCreate})
	if _, msgs := g.mustFetch(5); len(msgs) != 5 {
		t.Fatalf("worker fetched %d messages of its own topic", len(msgs))
	}
	if err := g.ack(netproto.OpGroupAck, netproto.AckRange{First: 0, Count: 5}); err != nil {
		t.Fatal(err)
	}
	w.mustDescribe(t, "g", "work")
	theirs := *g
	theirs.topic = "secret"
	refused := map[string]func() error{
		"join another topic's group": func() error {
			_, err := w.call(netproto.OpGroupJoin, &netproto.GroupJoinRequest{Group: []byte("g"), Topic: []byte("secret"), Flags: netproto.JoinCreate})
			return err
		},
		"join naming a dead-letter topic it may not produce to": func() error {
			_, err := w.call(netproto.OpGroupJoin, &netproto.GroupJoinRequest{Group: []byte("g2"), Topic: []byte("work"), Flags: netproto.JoinCreate, MaxDeliveries: 3, DeadLetter: []byte("dead")})
			return err
		},
		"fetch another topic's group":    func() error { _, _, err := theirs.fetch(5); return err },
		"ack in another topic's group":   func() error { return theirs.ack(netproto.OpGroupAck, netproto.AckRange{First: 0, Count: 1}) },
		"describe another topic's group": func() error { _, err := w.describe("g", "secret"); return err },
		"seek without admin": func() error {
			_, err := w.call(netproto.OpGroupSeek, &netproto.GroupSeekRequest{Group: []byte("g"), Topic: []byte("work")})
			return err
		},
		"delete without admin": func() error {
			_, err := w.call(netproto.OpGroupDelete, &netproto.GroupRequest{Group: []byte("g"), Topic: []byte("work")})
			return err
		},
		"list another topic's groups": func() error {
			_, err := w.call(netproto.OpGroupList, &netproto.GroupListRequest{Topic: []byte("secret")})
			return err
		},
	}
	for name, do := range refused {
		var pe *netproto.Error
		if err := do(); !errors.As(err, &pe) || pe.Code != netproto.CodeUnauthorized {
			t.Errorf("%s: %v, want Unauthorized", name, err)
		}
	}
	var list netproto.GroupListResponse
	w.mustCall(t, netproto.OpGroupList, &netproto.GroupListRequest{}, &list)
	if len(list.Groups) != 1 || string(list.Groups[0].Topic) != "work" {
		t.Fatalf("worker's list of every group: %+v", list.Groups)
	}
	if d := ops.mustDescribe(t, "g", "secret"); d.Committed != 0 || d.InFlight != 0 {
		t.Fatalf("the refused requests changed the other topic's group: %+v", d)
	}
	// Allowed to the client with the permissions, on the same connection
	// kinds.
	var seek netproto.GroupSeekResponse
	ops.mustCall(t, netproto.OpGroupSeek, &netproto.GroupSeekRequest{Kind: netproto.StartLatest, Group: []byte("g"), Topic: []byte("work")}, &seek)
	if seek.Committed != 10 {
		t.Fatalf("seek to latest: %d", seek.Committed)
	}
	ops.mustJoin(t, "g2", "work", netproto.GroupJoinRequest{Flags: netproto.JoinCreate, MaxDeliveries: 3, DeadLetter: []byte("dead")})
}

// TestGroupUnsentLeasesNotCounted: leases a fetch could not send (past the
// frame limit) go back without counting as a delivery, so a group with
// MaxDeliveries 1 delivers every message once and dead-letters none that
// no member ever received.
func TestGroupUnsentLeasesNotCounted(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{MaxBody: 1 << 10})
	p := mustDial(t, ts, "")
	p.mustCall(t, netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: []byte("work")}, nil)
	p.mustCall(t, netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: []byte("dlq")}, nil)
	big := strings.Repeat("x", 300)
	for i := range 8 { // eight batches of about 400 bytes: two fit in a frame
		p.mustProduce(t, "work", batchOf(t, fmt.Sprintf("m%d", i), big))
	}
	g := p.mustJoin(t, "g", "work", netproto.GroupJoinRequest{Flags: netproto.JoinCreate, AckWaitMillis: 60000,
		MaxDeliveries: 1, DeadLetter: []byte("dlq")})
	var got []uint64
	for range 16 {
		_, msgs := g.mustFetch(16)
		for _, m := range msgs {
			got = append(got, m.off)
			if err := g.ack(netproto.OpGroupAck, netproto.AckRange{First: m.off, Count: 1}); err != nil {
				t.Fatalf("ack %d: %v", m.off, err)
			}
		}
		if len(got) == 16 {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(offsetsOf(engineMessages(t, e, "work"))) {
		t.Fatalf("delivered %v; want every message once", got)
	}
	if d := p.mustDescribe(t, "g", "work"); d.DeadLettered != 0 {
		t.Fatalf("%d messages dead-lettered that no member ever received", d.DeadLettered)
	}
}
