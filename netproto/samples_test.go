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
		{"ErrorResponse", 0, true, &ErrorResponse{Start: 5, End: 10, Retriable: true, Message: []byte("offset 11")}, new(ErrorResponse)},
	}
}
