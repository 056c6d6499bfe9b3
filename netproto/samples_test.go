package netproto

import (
	"testing"

	"github.com/haraqa/haraqa/record"
)

// sample is one message value used by the table tests.
type sample struct {
	name string
	op   Opcode
	resp bool    // a response body (or an error body when op is 0)
	msg  Message // with non-empty fields, so that a decode compares deeply
	zero Message // a fresh value of the same type to decode into
}

func testBatch(t testing.TB) []byte {
	t.Helper()
	b, err := record.AppendBatch(nil, []byte("hello"), []byte("world"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// samples returns one filled-in value of every message type.
func samples(t testing.TB) []sample {
	batch := testBatch(t)
	two := append(append([]byte(nil), batch...), batch...)
	return []sample{
		{"HelloRequest", OpHello, false, &HelloRequest{Version: 1, Token: []byte("secret")}, new(HelloRequest)},
		{"HelloResponse", OpHello, true, &HelloResponse{Version: 1, MaxBody: DefaultMaxBody, ServerID: []byte("broker-1")}, new(HelloResponse)},
		{"ProduceRequest", OpProduce, false, &ProduceRequest{Topic: []byte("events"), Batch: batch}, new(ProduceRequest)},
		{"ProduceResponse", OpProduce, true, &ProduceResponse{BaseOffset: 1 << 40, Count: 2}, new(ProduceResponse)},
		{"ConsumeRequest", OpConsume, false, &ConsumeRequest{Topic: []byte("events"), Offset: 42, Limit: 100, MaxBytes: 1 << 20, MaxWaitMillis: 500}, new(ConsumeRequest)},
		{"ConsumeResponse", OpConsume, true, &ConsumeResponse{Start: 3, End: 99, BatchBytes: uint32(len(two)), Batches: two}, new(ConsumeResponse)},
		{"ConsumeNextRequest", OpConsumeNext, false, &ConsumeNextRequest{Topic: []byte("events"), After: 7, Limit: 100, MaxBytes: 1 << 20, MaxWaitMillis: 500}, new(ConsumeNextRequest)},
		{"TopicsRequest", OpTopics, false, &TopicsRequest{Prefix: []byte("ev"), Regexp: []byte("^ev.*s$")}, new(TopicsRequest)},
		{"TopicsResponse", OpTopics, true, &TopicsResponse{Names: [][]byte{[]byte("a"), []byte("events"), []byte("x.y-z_1")}}, new(TopicsResponse)},
		{"CreateTopicRequest", OpCreateTopic, false, &CreateTopicRequest{Topic: []byte("new")}, new(CreateTopicRequest)},
		{"CreateTopicResponse", OpCreateTopic, true, &CreateTopicResponse{}, new(CreateTopicResponse)},
		{"DeleteTopicRequest", OpDeleteTopic, false, &DeleteTopicRequest{Topic: []byte("old")}, new(DeleteTopicRequest)},
		{"DeleteTopicResponse", OpDeleteTopic, true, &DeleteTopicResponse{}, new(DeleteTopicResponse)},
		{"TruncateRequest", OpTruncate, false, &TruncateRequest{Topic: []byte("events"), BeforeOffset: 1000, BeforeTime: -5}, new(TruncateRequest)},
		{"TruncateResponse", OpTruncate, true, &TruncateResponse{Start: 512}, new(TruncateResponse)},
		{"OffsetsRequest", OpOffsets, false, &OffsetsRequest{Topic: []byte("events"), Time: 1_700_000_000_000_000_000}, new(OffsetsRequest)},
		{"OffsetsResponse", OpOffsets, true, &OffsetsResponse{Start: 1, End: 2, AtTime: 3}, new(OffsetsResponse)},
		{"WatchRequest", OpWatch, false, &WatchRequest{Topics: [][]byte{[]byte("a"), []byte("b")}}, new(WatchRequest)},
		{"WatchResponse", OpWatch, true, &WatchResponse{}, new(WatchResponse)},
		{"WatchEvent", OpWatchEvent, true, &WatchEvent{Topic: []byte("a"), Start: 7, End: 9}, new(WatchEvent)},
		{"InitProducerRequest", OpInitProducer, false, &InitProducerRequest{}, new(InitProducerRequest)},
		{"InitProducerResponse", OpInitProducer, true, &InitProducerResponse{ProducerID: 77}, new(InitProducerResponse)},
		{"GroupJoinRequest", OpGroupJoin, false, &GroupJoinRequest{Group: []byte("workers"), Topic: []byte("events"), DeadLetter: []byte("events.dead"), MemberName: []byte("host-1/42"), StartValue: -7, AckWaitMillis: 30000, MaxDeliveries: 5, StartKind: StartTime, Flags: JoinCreate | JoinExclusive}, new(GroupJoinRequest)},
		{"GroupJoinResponse", OpGroupJoin, true, &GroupJoinResponse{MemberID: 3, MemberEpoch: 4, Committed: 1 << 33, AckWaitMillis: 30000, MaxDeliveries: 5, Flags: JoinedCreated | JoinedHolder, DeadLetter: []byte("dlq")}, new(GroupJoinResponse)},
		{"GroupFetchRequest", OpGroupFetch, false, &GroupFetchRequest{MemberID: 3, MemberEpoch: 4, MaxMessages: 500, MaxBytes: 1 << 20, MaxWaitMillis: 250, Group: []byte("workers"), Topic: []byte("events")}, new(GroupFetchRequest)},
		{"GroupFetchResponse", OpGroupFetch, true, &GroupFetchResponse{Start: 1, End: 99, MemberEpoch: 4, Ranges: []LeasedRange{{First: 0, Count: 1, Deliveries: 1}, {First: 1, Count: 1, Deliveries: 3}}, BatchBytes: uint32(len(two)), Batches: two}, new(GroupFetchResponse)},
		{"GroupAckRequest", OpGroupAck, false, &GroupAckRequest{MemberID: 3, MemberEpoch: 4, Ranges: []AckRange{{First: 5, Count: 2}, {First: 7, Count: 1}, {First: 100, Count: 1 << 20}}, Group: []byte("workers"), Topic: []byte("events")}, new(GroupAckRequest)},
		{"GroupNackRequest", OpGroupNack, false, &GroupNackRequest{MemberID: 3, MemberEpoch: 4, DelayMillis: 1500, Ranges: []AckRange{{First: 9, Count: 1}}, Group: []byte("workers"), Topic: []byte("events")}, new(GroupNackRequest)},
		{"GroupCommitRequest", OpGroupCommit, false, &GroupCommitRequest{MemberID: 3, MemberEpoch: 4, Offset: 1000, Group: []byte("workers"), Topic: []byte("events")}, new(GroupCommitRequest)},
		{"GroupAckResponse", OpGroupAck, true, &GroupAckResponse{}, new(GroupAckResponse)},
		{"GroupRequest", OpGroupDescribe, false, &GroupRequest{Group: []byte("workers"), Topic: []byte("events")}, new(GroupRequest)},
		{"GroupDescribeResponse", OpGroupDescribe, true, &GroupDescribeResponse{Committed: 10, Start: 2, End: 30, Lag: 20, InFlight: 5, Acked: 2, Delivered: 25, Redeliveries: 7, Expired: 3, DeadLettered: 1, Skipped: 2, Epoch: 9, AckWaitMillis: 30000, MaxDeliveries: 4, Exclusive: true, DeadLetter: []byte("dlq"),
			Members: []GroupMember{{ID: 1, InFlight: 5, LastSeen: 1_700_000_000_000_000_000, Holder: true, Name: []byte("host-1/42")}, {ID: 2, Name: []byte("host-2/7")}}}, new(GroupDescribeResponse)},
		{"GroupListRequest", OpGroupList, false, &GroupListRequest{Topic: []byte("events")}, new(GroupListRequest)},
		{"GroupListResponse", OpGroupList, true, &GroupListResponse{Groups: []GroupInfo{{Committed: 1, Lag: 2, Members: 3, Topic: []byte("events"), Group: []byte("a")}, {Topic: []byte("events"), Group: []byte("b")}}}, new(GroupListResponse)},
		{"GroupSeekRequest", OpGroupSeek, false, &GroupSeekRequest{Value: 77, Kind: StartOffset, Group: []byte("workers"), Topic: []byte("events")}, new(GroupSeekRequest)},
		{"GroupSeekResponse", OpGroupSeek, true, &GroupSeekResponse{Committed: 77}, new(GroupSeekResponse)},
		{"GroupDeleteResponse", OpGroupDelete, true, &GroupDeleteResponse{}, new(GroupDeleteResponse)},
		{"GroupLeaveRequest", OpGroupLeave, false, &GroupLeaveRequest{MemberID: 3, MemberEpoch: 4, Group: []byte("workers"), Topic: []byte("events")}, new(GroupLeaveRequest)},
		{"GroupLeaveResponse", OpGroupLeave, true, &GroupLeaveResponse{}, new(GroupLeaveResponse)},
		{"PlacementRequest", OpPlacement, false, &PlacementRequest{Topics: [][]byte{[]byte("a"), []byte("events")}}, new(PlacementRequest)},
		{"PlacementResponse", OpPlacement, true, &PlacementResponse{Nodes: []PlacementNode{{ID: 1, Addr: []byte("10.0.0.1:4353")}, {ID: 2, Addr: []byte("10.0.0.2:4353")}},
			Topics: []PlacementTopic{{Name: []byte("events"), Leader: 2, Term: 7, Replicas: []uint64{1, 2, 3}}}}, new(PlacementResponse)},
		{"ErrorResponse", 0, true, &ErrorResponse{Start: 5, End: 10, Retriable: true, Message: []byte("offset 11")}, new(ErrorResponse)},
	}
}
