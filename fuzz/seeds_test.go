package fuzz

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus under testdata/fuzz")

// seed is one named corpus entry: the fuzz target's arguments.
type seed struct {
	name string
	args []any
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func seedBatch(msgs ...string) []byte {
	var bs [][]byte
	for _, m := range msgs {
		bs = append(bs, []byte(m))
	}
	return must(record.AppendBatch(nil, bs...))
}

// body prefixes a message body with the byte that picks its opcode.
func body(op netproto.Opcode, m netproto.Encoder) []byte {
	return m.AppendTo([]byte{byte(op)})
}

func frameHeaderSeeds() []seed {
	produce := netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpProduce, RequestID: 1},
		&netproto.ProduceRequest{Topic: []byte("events"), Batch: seedBatch("hello")})
	consume := (&netproto.ConsumeResponse{Start: 1, End: 9, BatchBytes: 64}).AppendHead(nil, 2)
	errFrame := netproto.AppendErrorFrame(nil, netproto.OpConsume, 3, &netproto.Error{Code: netproto.CodeOffsetOutOfRange, Message: "x", End: 4})
	watch := netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpWatchEvent, Flags: netproto.FlagResponse, RequestID: 4},
		&netproto.WatchEvent{Topic: []byte("t"), End: 1})
	return []seed{
		{"produce_request", []any{produce}},
		{"consume_response_head", []any{consume}},
		{"error_response", []any{errFrame}},
		{"watch_event", []any{watch}},
		{"http_get", []any{[]byte("GET / HTTP/1.1\r\nHost: broker\r\n\r\n")}},
		{"huge_length", []any{[]byte{0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}}},
	}
}

func requestSeeds() []seed {
	topic := []byte("events")
	return []seed{
		{"hello", []any{body(netproto.OpHello, &netproto.HelloRequest{Version: netproto.ProtocolVersion, Token: []byte("t0k")})}},
		{"produce", []any{body(netproto.OpProduce, &netproto.ProduceRequest{Topic: topic, Batch: seedBatch("a", "bc")})}},
		{"consume", []any{body(netproto.OpConsume, &netproto.ConsumeRequest{Topic: topic, Offset: 5, Limit: 10, MaxBytes: 1 << 20, MaxWaitMillis: 100})}},
		{"topics", []any{body(netproto.OpTopics, &netproto.TopicsRequest{Prefix: []byte("ev"), Regexp: []byte("s$")})}},
		{"create_topic", []any{body(netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: topic})}},
		{"delete_topic", []any{body(netproto.OpDeleteTopic, &netproto.DeleteTopicRequest{Topic: topic})}},
		{"truncate", []any{body(netproto.OpTruncate, &netproto.TruncateRequest{Topic: topic, BeforeOffset: 9, BeforeTime: 1})}},
		{"offsets", []any{body(netproto.OpOffsets, &netproto.OffsetsRequest{Topic: topic, Time: 1})}},
		{"watch", []any{body(netproto.OpWatch, &netproto.WatchRequest{Topics: [][]byte{topic, []byte("b")}})}},
		{"init_producer", []any{body(netproto.OpInitProducer, &netproto.InitProducerRequest{})}},
		{"truncated_string", []any{[]byte{byte(netproto.OpCreateTopic), 9, 0, 'a'}}},
		{"consume_next", []any{body(netproto.OpConsumeNext, &netproto.ConsumeNextRequest{Topic: topic, After: 7, Limit: 10, MaxBytes: 1 << 20, MaxWaitMillis: 100})}},
	}
}

func responseSeeds() []seed {
	topic := []byte("events")
	b := seedBatch("x")
	return []seed{
		{"error", []any{body(0, &netproto.ErrorResponse{Start: 1, End: 2, Retriable: true, Message: []byte("offset 7")})}},
		{"hello", []any{body(netproto.OpHello, &netproto.HelloResponse{Version: 1, MaxBody: netproto.DefaultMaxBody, ServerID: []byte("b1")})}},
		{"produce", []any{body(netproto.OpProduce, &netproto.ProduceResponse{BaseOffset: 7, Count: 2})}},
		{"consume", []any{body(netproto.OpConsume, &netproto.ConsumeResponse{Start: 1, End: 3, BatchBytes: uint32(len(b)), Batches: b})}},
		{"topics", []any{body(netproto.OpTopics, &netproto.TopicsResponse{Names: [][]byte{topic, []byte("x")}})}},
		{"create_topic", []any{body(netproto.OpCreateTopic, &netproto.CreateTopicResponse{})}},
		{"delete_topic", []any{body(netproto.OpDeleteTopic, &netproto.DeleteTopicResponse{})}},
		{"truncate", []any{body(netproto.OpTruncate, &netproto.TruncateResponse{Start: 4})}},
		{"offsets", []any{body(netproto.OpOffsets, &netproto.OffsetsResponse{Start: 1, End: 5, AtTime: 3})}},
		{"watch", []any{body(netproto.OpWatch, &netproto.WatchResponse{})}},
		{"watch_event", []any{body(netproto.OpWatchEvent, &netproto.WatchEvent{Topic: topic, Start: 1, End: 2})}},
		{"init_producer", []any{body(netproto.OpInitProducer, &netproto.InitProducerResponse{ProducerID: 9})}},
		{"huge_count", []any{[]byte{byte(netproto.OpTopics), 0xff, 0xff, 0xff, 0xff, 1, 0}}},
	}
}

func batchSeeds() []seed {
	one := seedBatch("hello")
	two := append(seedBatch("a", "", "ccc"), seedBatch("second batch")...)
	corrupt := append([]byte(nil), one...)
	corrupt[record.HeaderSize] ^= 1
	s2 := append([]byte(nil), one...)
	s2[6] |= byte(record.CodecS2)
	record.Stamp(s2, 10, 20) // recompute the header hash over the new flags
	return []seed{
		{"one", []any{one, false}},
		{"two_batches", []any{two, false}},
		{"s2_flag", []any{s2, false}},
		{"payload_flipped", []any{corrupt, false}},
		{"payload_flipped_fixed", []any{corrupt, true}},
		{"torn_tail", []any{two[:len(two)-5], false}},
		{"zero_header", []any{make([]byte, record.HeaderSize), true}},
		{"zstd_extended", []any{seedBuild(seedLines(20), true, record.CodecZstd), false}},
		{"s2_plain", []any{seedBuild(seedLines(20), false, record.CodecS2), false}},
	}
}

// seedPayload returns the stored payload and header fields of a batch,
// as FuzzDecompress takes them.
func seedPayload(batch []byte) []any {
	h := must(record.Verify(batch))
	return []any{batch[record.HeaderSize : record.HeaderSize+int(h.PayloadLen)], h.Flags, h.Count, h.RawLen}
}

// seedLines returns n log-like lines, compressible.
func seedLines(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"path":"/api/v1/items/%d","status":%d,"ms":%d}`, i%7, 200+i%3, i*13%100)
	}
	return out
}

// seedBuild builds a batch of lines, extended (with keys, headers and
// timestamps) or plain, finished with codec c.
func seedBuild(lines [][]byte, extended bool, c record.Codec) []byte {
	var b record.Builder
	b.Reset()
	for i, l := range lines {
		if extended {
			hdrs := []record.MessageHeader{{Key: "trace", Value: fmt.Appendf(nil, "%x", i)}}
			must(0, b.AddMessage(1700000000000000000+int64(i)*1000, fmt.Appendf(nil, "k%d", i%3), l, hdrs))
		} else {
			must(0, b.Add(l))
		}
	}
	return append([]byte(nil), must(b.FinishCodec(c))...)
}

func decompressSeeds() []seed {
	lines := seedLines(50)
	zeros := make([]byte, 4<<20)
	bomb := func(c record.Codec) []byte { // 4 MiB of zero messages
		var b record.Builder
		b.Reset()
		must(0, b.Add(zeros))
		return append([]byte(nil), must(b.FinishCodec(c))...)
	}
	sBomb, zBomb := seedPayload(bomb(record.CodecS2)), seedPayload(bomb(record.CodecZstd))
	sBomb[3], zBomb[3] = uint32(100), uint32(100) // raw_len lies
	zst := seedPayload(seedBuild(lines, false, record.CodecZstd))
	short := append([]any{zst[0].([]byte)[:len(zst[0].([]byte))/2]}, zst[1:]...)
	return []seed{
		{"s2_plain", seedPayload(seedBuild(lines, false, record.CodecS2))},
		{"s2_extended", seedPayload(seedBuild(lines, true, record.CodecS2))},
		{"zstd_plain", zst},
		{"zstd_extended", seedPayload(seedBuild(lines, true, record.CodecZstd))},
		{"none_extended", seedPayload(seedBuild(lines[:3], true, record.CodecNone))},
		{"s2_bomb", sBomb},
		{"zstd_bomb", zBomb},
		{"zstd_truncated", short},
		{"zstd_garbage", []any{[]byte("\x28\xb5\x2f\xfdgarbage"), uint16(record.CodecZstd), uint32(1), uint32(10)}},
	}
}

func extendedSeeds() []seed {
	raw := func(batch []byte) []byte {
		h := must(record.Verify(batch))
		return batch[record.HeaderSize : record.HeaderSize+int(h.PayloadLen)]
	}
	ext := raw(seedBuild(seedLines(5), true, record.CodecNone))
	h := must(record.Verify(seedBuild(seedLines(5), true, record.CodecNone)))
	base := []byte{0, 0, 0, 0, 0, 0, 0, 0}
	return []seed{
		{"five", []any{ext, h.Count}},
		{"minimal", []any{append(base, 3, 0, 0, 0), uint32(1)}},
		{"header_count_lies", []any{append(base, 4, 0, 0, 9, 0), uint32(1)}},
		{"key_past_end", []any{append(base, 3, 0, 7, 0), uint32(1)}},
		{"no_base", []any{[]byte{3, 0, 0, 0}, uint32(1)}},
		{"wrapping_timestamps", []any{append(append([]byte(nil), 0, 0, 0, 0, 0, 0, 0, 0x80), 12, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0), uint32(1)}},
	}
}

func addSeeds(f *testing.F, seeds []seed) {
	for _, s := range seeds {
		f.Add(s.args...)
	}
}

// corpusFile encodes args in the "go test fuzz v1" format.
func corpusFile(args []any) []byte {
	out := []byte("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			out = fmt.Appendf(out, "[]byte(%q)\n", v)
		case bool:
			out = fmt.Appendf(out, "bool(%v)\n", v)
		case uint16:
			out = fmt.Appendf(out, "uint16(%d)\n", v)
		case uint32:
			out = fmt.Appendf(out, "uint32(%d)\n", v)
		default:
			panic(fmt.Sprintf("seed argument of type %T", a))
		}
	}
	return out
}

// TestSeedCorpus checks that the committed corpus holds every seed, byte for
// byte; with -update-corpus it writes them. Other files (crashers that go
// test -fuzz saves) are left alone.
func TestSeedCorpus(t *testing.T) {
	targets := map[string][]seed{
		"FuzzFrameHeader": frameHeaderSeeds(),
		"FuzzRequests":    requestSeeds(),
		"FuzzResponses":   responseSeeds(),
		"FuzzBatch":       batchSeeds(),
		"FuzzDecompress":  decompressSeeds(),
		"FuzzExtended":    extendedSeeds(),

		"FuzzGroupRequests":  groupRequestSeeds(),
		"FuzzGroupResponses": groupResponseSeeds(),

		"FuzzPlacement": placementSeeds(),
	}
	for target, seeds := range targets {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
			path := filepath.Join(dir, s.name)
			want := corpusFile(s.args)
			if *updateCorpus {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != string(want) {
				t.Errorf("%s is missing or stale (%v); run go test ./fuzz -run=TestSeedCorpus -update-corpus", path, err)
			}
		}
	}
}
