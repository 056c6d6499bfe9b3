package fuzz

import (
	"testing"

	"github.com/haraqa/haraqa/netproto"
)

// groupOps are the consumer-group opcodes, in number order.
const (
	firstGroupOp = netproto.OpGroupJoin
	groupOps     = int(netproto.OpGroupLeave-netproto.OpGroupJoin) + 1
)

// groupOp picks a group opcode from a fuzzer's first byte.
func groupOp(b byte) netproto.Opcode { return firstGroupOp + netproto.Opcode(int(b)%groupOps) }

// FuzzGroupRequests decodes arbitrary bodies as consumer-group requests:
// the first byte picks the opcode (modulo the number of group opcodes),
// the rest is the body. No input panics, a failure is ErrMalformed, and
// what decodes re-encodes to the same bytes.
func FuzzGroupRequests(f *testing.F) {
	addSeeds(f, groupRequestSeeds())
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		op := groupOp(data[0])
		checkDecode(t, netproto.NewRequest(op), netproto.NewRequest(op), data[1:])
	})
}

// FuzzGroupResponses is FuzzGroupRequests for the responses.
func FuzzGroupResponses(f *testing.F) {
	addSeeds(f, groupResponseSeeds())
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		op := groupOp(data[0])
		checkDecode(t, netproto.NewResponse(op), netproto.NewResponse(op), data[1:])
	})
}

// groupBody prefixes a body with the byte groupOp maps to op.
func groupBody(op netproto.Opcode, m netproto.Encoder) []byte {
	return m.AppendTo([]byte{byte(op - firstGroupOp)})
}

func groupRequestSeeds() []seed {
	g, topic := []byte("workers"), []byte("events")
	ranges := []netproto.AckRange{{First: 3, Count: 2}, {First: 9, Count: 1}}
	return []seed{
		{"join", []any{groupBody(netproto.OpGroupJoin, &netproto.GroupJoinRequest{Group: g, Topic: topic, DeadLetter: []byte("dead"), MemberName: []byte("h/1"), AckWaitMillis: 30000, MaxDeliveries: 3, StartKind: netproto.StartOffset, StartValue: 5, Flags: netproto.JoinCreate})}},
		{"fetch", []any{groupBody(netproto.OpGroupFetch, &netproto.GroupFetchRequest{MemberID: 1, MemberEpoch: 2, MaxMessages: 100, MaxBytes: 1 << 20, MaxWaitMillis: 100, Group: g, Topic: topic})}},
		{"ack", []any{groupBody(netproto.OpGroupAck, &netproto.GroupAckRequest{MemberID: 1, MemberEpoch: 2, Ranges: ranges, Group: g, Topic: topic})}},
		{"nack", []any{groupBody(netproto.OpGroupNack, &netproto.GroupNackRequest{MemberID: 1, MemberEpoch: 2, DelayMillis: 10, Ranges: ranges, Group: g, Topic: topic})}},
		{"extend_all", []any{groupBody(netproto.OpGroupExtend, &netproto.GroupAckRequest{MemberID: 1, MemberEpoch: 2, Group: g, Topic: topic})}},
		{"commit", []any{groupBody(netproto.OpGroupCommit, &netproto.GroupCommitRequest{MemberID: 1, MemberEpoch: 2, Offset: 10, Group: g, Topic: topic})}},
		{"describe", []any{groupBody(netproto.OpGroupDescribe, &netproto.GroupRequest{Group: g, Topic: topic})}},
		{"list", []any{groupBody(netproto.OpGroupList, &netproto.GroupListRequest{Topic: topic})}},
		{"seek", []any{groupBody(netproto.OpGroupSeek, &netproto.GroupSeekRequest{Value: 1, Kind: netproto.StartTime, Group: g, Topic: topic})}},
		{"delete", []any{groupBody(netproto.OpGroupDelete, &netproto.GroupRequest{Group: g, Topic: topic})}},
		{"leave", []any{groupBody(netproto.OpGroupLeave, &netproto.GroupLeaveRequest{MemberID: 1, MemberEpoch: 2, Group: g, Topic: topic})}},
		{"ack_overlapping", []any{groupBody(netproto.OpGroupAck, &netproto.GroupAckRequest{Ranges: []netproto.AckRange{{First: 3, Count: 5}, {First: 4, Count: 1}}})}},
		{"ack_huge_count", []any{[]byte{byte(netproto.OpGroupAck - firstGroupOp), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}}},
	}
}

func groupResponseSeeds() []seed {
	b := seedBatch("x", "y")
	return []seed{
		{"join", []any{groupBody(netproto.OpGroupJoin, &netproto.GroupJoinResponse{MemberID: 1, MemberEpoch: 2, Committed: 3, AckWaitMillis: 30000, Flags: netproto.JoinedCreated | netproto.JoinedHolder, DeadLetter: []byte("dead")})}},
		{"fetch", []any{groupBody(netproto.OpGroupFetch, &netproto.GroupFetchResponse{Start: 0, End: 2, MemberEpoch: 2, Ranges: []netproto.LeasedRange{{First: 0, Count: 1, Deliveries: 1}, {First: 1, Count: 1, Deliveries: 2}}, BatchBytes: uint32(len(b)), Batches: b})}},
		{"fetch_empty", []any{groupBody(netproto.OpGroupFetch, &netproto.GroupFetchResponse{Start: 0, End: 2, MemberEpoch: 2})}},
		{"ack", []any{groupBody(netproto.OpGroupAck, &netproto.GroupAckResponse{})}},
		{"describe", []any{groupBody(netproto.OpGroupDescribe, &netproto.GroupDescribeResponse{Committed: 1, End: 9, Lag: 8, InFlight: 2, Exclusive: true, DeadLetter: []byte("d"),
			Members: []netproto.GroupMember{{ID: 1, InFlight: 2, LastSeen: 5, Holder: true, Name: []byte("h/1")}}})}},
		{"list", []any{groupBody(netproto.OpGroupList, &netproto.GroupListResponse{Groups: []netproto.GroupInfo{{Committed: 1, Lag: 2, Members: 1, Topic: []byte("events"), Group: []byte("w")}}})}},
		{"seek", []any{groupBody(netproto.OpGroupSeek, &netproto.GroupSeekResponse{Committed: 7})}},
		{"delete", []any{groupBody(netproto.OpGroupDelete, &netproto.GroupDeleteResponse{})}},
		{"leave", []any{groupBody(netproto.OpGroupLeave, &netproto.GroupLeaveResponse{})}},
	}
}
