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
