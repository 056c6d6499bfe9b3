package netproto

import "strconv"

// Opcode names the operation of a frame. Numbers are stable; new opcodes are
// only ever added. A response carries the opcode of its request.
type Opcode uint8

// Opcodes. Each request type XRequest has a response type XResponse, except
// that WatchEvent is a push from the server on a Watch's request id.
const (
	OpHello        Opcode = 1
	OpProduce      Opcode = 2
	OpConsume      Opcode = 3
	OpTopics       Opcode = 4
	OpCreateTopic  Opcode = 5
	OpDeleteTopic  Opcode = 6
	OpTruncate     Opcode = 7
	OpOffsets      Opcode = 8
	OpWatch        Opcode = 9
	OpWatchEvent   Opcode = 10
	OpInitProducer Opcode = 11

	// Consumer groups (PROTOCOL.md, "Consumer groups").
	OpGroupJoin     Opcode = 12
	OpGroupFetch    Opcode = 13
	OpGroupAck      Opcode = 14
	OpGroupNack     Opcode = 15
	OpGroupExtend   Opcode = 16
	OpGroupCommit   Opcode = 17
	OpGroupDescribe Opcode = 18
	OpGroupList     Opcode = 19
	OpGroupSeek     Opcode = 20
	OpGroupDelete   Opcode = 21
	OpGroupLeave    Opcode = 22

	// Clusters (PROTOCOL.md, "Placement").
	OpPlacement Opcode = 23

	// A consume that reads on from where an earlier one's answer ended
	// (PROTOCOL.md, "ConsumeNext").
	OpConsumeNext Opcode = 24
)

var opNames = [...]string{
	OpHello:        "hello",
	OpProduce:      "produce",
	OpConsume:      "consume",
	OpTopics:       "topics",
	OpCreateTopic:  "create-topic",
	OpDeleteTopic:  "delete-topic",
	OpTruncate:     "truncate",
	OpOffsets:      "offsets",
	OpWatch:        "watch",
	OpWatchEvent:   "watch-event",
	OpInitProducer: "init-producer",

	OpGroupJoin:     "group-join",
	OpGroupFetch:    "group-fetch",
	OpGroupAck:      "group-ack",
	OpGroupNack:     "group-nack",
	OpGroupExtend:   "group-extend",
	OpGroupCommit:   "group-commit",
	OpGroupDescribe: "group-describe",
	OpGroupList:     "group-list",
	OpGroupSeek:     "group-seek",
	OpGroupDelete:   "group-delete",
	OpGroupLeave:    "group-leave",

	OpPlacement: "placement",

	OpConsumeNext: "consume-next",
}

// Valid reports whether op is an opcode of this protocol version.
func (op Opcode) Valid() bool { return op != 0 && int(op) < len(opNames) }

// String names the opcode; unknown opcodes read as "opcode(N)".
func (op Opcode) String() string {
	if op.Valid() {
		return opNames[op]
	}
	return "opcode(" + strconv.Itoa(int(op)) + ")"
}

// NewRequest returns a new, zero request message for op, or nil when op has
// no request (OpWatchEvent, unknown opcodes). It allocates; the broker's hot
// path uses the concrete types instead. Protocol tools and fuzzers use it.
func NewRequest(op Opcode) Message {
	switch op {
	case OpHello:
		return new(HelloRequest)
	case OpProduce:
		return new(ProduceRequest)
	case OpConsume:
		return new(ConsumeRequest)
	case OpTopics:
		return new(TopicsRequest)
	case OpCreateTopic:
		return new(CreateTopicRequest)
	case OpDeleteTopic:
		return new(DeleteTopicRequest)
	case OpTruncate:
		return new(TruncateRequest)
	case OpOffsets:
		return new(OffsetsRequest)
	case OpWatch:
		return new(WatchRequest)
	case OpInitProducer:
		return new(InitProducerRequest)
	case OpGroupJoin:
		return new(GroupJoinRequest)
	case OpGroupFetch:
		return new(GroupFetchRequest)
	case OpGroupAck, OpGroupExtend:
		return new(GroupAckRequest)
	case OpGroupNack:
		return new(GroupNackRequest)
	case OpGroupCommit:
		return new(GroupCommitRequest)
	case OpGroupDescribe, OpGroupDelete:
		return new(GroupRequest)
	case OpGroupList:
		return new(GroupListRequest)
	case OpGroupSeek:
		return new(GroupSeekRequest)
	case OpGroupLeave:
		return new(GroupLeaveRequest)
	case OpPlacement:
		return new(PlacementRequest)
	case OpConsumeNext:
		return new(ConsumeNextRequest)
	}
	return nil
}

// NewResponse returns a new, zero body for a successful (Status 0) response
// frame with opcode op, or nil for unknown opcodes. Error responses, whatever
// their opcode, carry an ErrorResponse.
func NewResponse(op Opcode) Message {
	switch op {
	case OpHello:
		return new(HelloResponse)
	case OpProduce:
		return new(ProduceResponse)
	case OpConsume, OpConsumeNext:
		return new(ConsumeResponse)
	case OpTopics:
		return new(TopicsResponse)
	case OpCreateTopic:
		return new(CreateTopicResponse)
	case OpDeleteTopic:
		return new(DeleteTopicResponse)
	case OpTruncate:
		return new(TruncateResponse)
	case OpOffsets:
		return new(OffsetsResponse)
	case OpWatch:
		return new(WatchResponse)
	case OpWatchEvent:
		return new(WatchEvent)
	case OpInitProducer:
		return new(InitProducerResponse)
	case OpGroupJoin:
		return new(GroupJoinResponse)
	case OpGroupFetch:
		return new(GroupFetchResponse)
	case OpGroupAck, OpGroupNack, OpGroupExtend, OpGroupCommit:
		return new(GroupAckResponse)
	case OpGroupDescribe:
		return new(GroupDescribeResponse)
	case OpGroupList:
		return new(GroupListResponse)
	case OpGroupSeek:
		return new(GroupSeekResponse)
	case OpGroupDelete:
		return new(GroupDeleteResponse)
	case OpGroupLeave:
		return new(GroupLeaveResponse)
	case OpPlacement:
		return new(PlacementResponse)
	}
	return nil
}
