package kafka

import (
	"context"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinNow sends one JoinGroup on a connection whose context is already
// done, so the answer comes at once (a member that must wait for a
// rebalance gets REBALANCE_IN_PROGRESS but stays in the group).
func joinNow(t *testing.T, s *Server, group, memberID string) *kmsg.JoinGroupResponse {
	t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.ProtocolType = group, memberID, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 60_000, 60_000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", make([]byte, 100)
	req.Protocols = append(req.Protocols, p)
	req.SetVersion(5)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, req, 1)[4:]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &conn{s: s, ctx: ctx, cancel: cancel}
	sl := &slot{done: make(chan struct{})}
	c.handle(frame, sl)
	<-sl.done
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.SetVersion(5)
	if err := resp.ReadFrom(sl.out[8:]); err != nil {
		t.Fatal(err)
	}
	return resp
}

func coordGroups(s *Server) (groups, members int) {
	s.coord.mu.Lock()
	defer s.coord.mu.Unlock()
	for _, g := range s.coord.groups {
		members += len(g.members)
	}
	return len(s.coord.groups), members
}

// Promise: no client input makes the Kafka group coordinator hold
// unbounded memory: a group whose members all left (or that a refused
// JoinGroup named) is not kept, and the members all groups hold together
// are capped (Options.MaxGroupMembers; past it JoinGroup is answered
// GROUP_MAX_SIZE_REACHED and nothing is added).
func TestCoordinatorBounded(t *testing.T) {
	b := startBroker(t, Options{MaxGroupMembers: 5})
	for i := range 300 {
		g := "g" + strconv.Itoa(i)
		if i%2 == 0 {
			// An unknown member id: refused, and must leave nothing behind.
			if r := joinNow(t, b.s, g, "nobody"); r.ErrorCode != errUnknownMemberID {
				t.Fatalf("join as unknown member: code %d", r.ErrorCode)
			}
			continue
		}
		r := joinNow(t, b.s, g, "")
		if r.ErrorCode != errNone && r.ErrorCode != errRebalanceInProgress {
			t.Fatalf("join %s: code %d", g, r.ErrorCode)
		}
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Group, leave.MemberID = g, r.MemberID
		rc := dialRaw(t, b.addr)
		if resp := rc.do(leave).(*kmsg.LeaveGroupResponse); resp.ErrorCode != errNone {
			t.Fatalf("leave %s: code %d", g, resp.ErrorCode)
		}
		rc.c.Close()
	}
	if n, m := coordGroups(b.s); n != 0 || m != 0 {
		t.Fatalf("after every member left: %d groups, %d members held", n, m)
	}
	for i := range 5 {
		if r := joinNow(t, b.s, "big"+strconv.Itoa(i%2), ""); r.ErrorCode != errNone && r.ErrorCode != errRebalanceInProgress {
			t.Fatalf("join %d: code %d", i, r.ErrorCode)
		}
	}
	if r := joinNow(t, b.s, "big0", ""); r.ErrorCode != errGroupMaxSizeReached {
		t.Fatalf("join past MaxGroupMembers: code %d, want %d", r.ErrorCode, errGroupMaxSizeReached)
	}
	if _, m := coordGroups(b.s); m != 5 {
		t.Fatalf("%d members held, want 5", m)
	}
}

// Promise: every frame the listener's limits accept is served, whatever
// the limits: MaxInFlightBytes below 64 KiB, or a MaxFrame that is not a
// multiple of 64 KiB, still leave room for one largest frame (the room
// was counted in whole 64 KiB units rounded down, so such a frame waited
// forever, and with it every connection).
func TestInFlightRoomFitsOneFrame(t *testing.T) {
	for _, o := range []Options{
		{MaxFrame: 1000, MaxOtherFrame: 1000, MaxInFlightBytes: 1000},
		{MaxFrame: 100 << 10, MaxOtherFrame: 100 << 10, MaxInFlightBytes: 100 << 10},
	} {
		b := startBroker(t, o)
		rc := dialRaw(t, b.addr)
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(1)
		for n := int(o.MaxFrame) - 200; n > 0; n -= 30_002 { // a frame near MaxFrame
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(string(make([]byte, min(n, 30_000))))
			md.Topics = append(md.Topics, mt)
		}
		corr := rc.send(md)
		if got, _, err := rc.readFrame(); err != nil || got != corr {
			t.Fatalf("MaxFrame %d, MaxInFlightBytes %d: answer %d, %v", o.MaxFrame, o.MaxInFlightBytes, got, err)
		}
	}
}

// Promise: no client input makes the Kafka group coordinator hold
// unbounded memory through the bytes it keeps, not only the members:
// protocol metadata from JoinGroup and assignments from the leader's
// SyncGroup count against Options.MaxGroupBytes, and a request that would
// pass it is answered GROUP_MAX_SIZE_REACHED with nothing it carries kept
// (10,000 members with 1 MiB of metadata each could hold 10 GiB).
func TestCoordinatorBytesBounded(t *testing.T) {
	b := startBroker(t, Options{MaxGroupBytes: 1000})
	join := func(rc *rawClient, group string, meta int) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.ProtocolType = group, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 60_000, 60_000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", make([]byte, meta) // 5 + meta bytes held
		req.Protocols = append(req.Protocols, p)
		req.SetVersion(5)
		return rc.do(req).(*kmsg.JoinGroupResponse)
	}
	// One member alone: its join completes at once and it leads.
	rc := dialRaw(t, b.addr)
	r := join(rc, "g0", 395) // 400 held
	if r.ErrorCode != errNone || r.LeaderID != r.MemberID {
		t.Fatalf("first join: code %d, leader %q, member %q", r.ErrorCode, r.LeaderID, r.MemberID)
	}
	// A second group's join that would pass 1,000 bytes: refused, nothing kept.
	if r2 := join(dialRaw(t, b.addr), "g1", 700); r2.ErrorCode != errGroupMaxSizeReached {
		t.Fatalf("join past MaxGroupBytes: code %d, want %d", r2.ErrorCode, errGroupMaxSizeReached)
	}
	if n, m := coordGroups(b.s); n != 1 || m != 1 {
		t.Fatalf("after a refused join: %d groups, %d members held, want 1 and 1", n, m)
	}
	sync := func(assign int) int16 {
		req := kmsg.NewPtrSyncGroupRequest()
		req.Group, req.MemberID, req.Generation = "g0", r.MemberID, r.Generation
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = r.MemberID, make([]byte, assign)
		req.GroupAssignment = append(req.GroupAssignment, a)
		req.SetVersion(3)
		return rc.do(req).(*kmsg.SyncGroupResponse).ErrorCode
	}
	// The leader's assignment that would pass it: refused and not kept.
	if code := sync(700); code != errGroupMaxSizeReached {
		t.Fatalf("sync past MaxGroupBytes: code %d, want %d", code, errGroupMaxSizeReached)
	}
	b.s.coord.mu.Lock()
	held := b.s.coord.heldBytes()
	b.s.coord.mu.Unlock()
	if held != 400 {
		t.Fatalf("%d bytes held after refused requests, want 400", held)
	}
	// Within the cap: taken.
	if code := sync(500); code != errNone {
		t.Fatalf("sync within MaxGroupBytes: code %d", code)
	}
}
