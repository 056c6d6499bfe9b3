package fuzz

import (
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/kafka"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaBatch encodes values as one uncompressed Kafka record batch v2.
func kafkaBatch(values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte("k"), Value: []byte(v),
			Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}}}
		body := r.AppendTo(nil)[1:] // drop the zero length varint, re-add the real one
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	b := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(len(values) - 1), FirstTimestamp: 1_700_000_000_000,
		MaxTimestamp: 1_700_000_000_000, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(values)), Records: recs}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// kafkaFrame encodes req at version v as a request frame without its size.
func kafkaFrame(req kmsg.Request, v int16) []byte {
	req.SetVersion(v)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	return f.AppendRequest(nil, req, 7)[4:]
}

func kafkaSeeds() []seed {
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks = -1
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "events"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = kafkaBatch("a", "bb")
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	fetch := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "events"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fetch.MaxWaitMillis = 1
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("events")
	meta.Topics = append(meta.Topics, mt)
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "events"
	lt.Partitions = append(lt.Partitions, kmsg.NewListOffsetsRequestTopicPartition())
	lo.Topics = append(lo.Topics, lt)
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic = "other"
	create.Topics = append(create.Topics, ct)
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{"other"}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("other")
	del.Topics = append(del.Topics, dt)
	return []seed{
		{"kafka_apiversions_v3", []any{kafkaFrame(kmsg.NewPtrApiVersionsRequest(), 3)}},
		{"kafka_apiversions_v0", []any{kafkaFrame(kmsg.NewPtrApiVersionsRequest(), 0)}},
		{"kafka_metadata_v12", []any{kafkaFrame(meta, 12)}},
		{"kafka_metadata_v1", []any{kafkaFrame(meta, 1)}},
		{"kafka_produce_v9", []any{kafkaFrame(produce, 9)}},
		{"kafka_produce_v3", []any{kafkaFrame(produce, 3)}},
		{"kafka_fetch_v12", []any{kafkaFrame(fetch, 12)}},
		{"kafka_fetch_v4", []any{kafkaFrame(fetch, 4)}},
		{"kafka_listoffsets_v7", []any{kafkaFrame(lo, 7)}},
		{"kafka_create_v5", []any{kafkaFrame(create, 5)}},
		{"kafka_delete_v6", []any{kafkaFrame(del, 6)}},
		{"kafka_initproducerid_v4", []any{kafkaFrame(kmsg.NewPtrInitProducerIDRequest(), 4)}},
		{"kafka_describeconfigs_v4", []any{kafkaFrame(kmsg.NewPtrDescribeConfigsRequest(), 4)}},
		{"kafka_unknown_key", []any{[]byte{0x7f, 0x00, 0, 1, 0, 0, 0, 7, 0xff, 0xff}}},
	}
}

// FuzzKafkaRequest feeds arbitrary request frames to the Kafka listener's
// whole request path (header, kmsg decode, the handler on a real engine):
// it must never panic, and every answer is one frame whose size prefix is
// right and whose correlation id is the request's.
func FuzzKafkaRequest(f *testing.F) {
	addSeeds(f, kafkaSeeds())
	e, err := engine.Open(engine.Options{Dir: f.TempDir(), Fsync: engine.FsyncNever, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	if err := e.CreateTopic("events"); err != nil {
		f.Fatal(err)
	}
	s := kafka.New(e, kafka.Options{MaxWait: time.Millisecond, Logger: quietLogger()})
	f.Fuzz(func(t *testing.T, frame []byte) {
		out := s.HandleFrame(frame)
		if out == nil {
			return // acks=0 produce
		}
		if len(out) < 8 || int(binary.BigEndian.Uint32(out)) != len(out)-4 {
			t.Fatalf("answer of %d bytes with a bad size prefix", len(out))
		}
		if len(frame) >= 8 && binary.BigEndian.Uint32(out[4:]) != binary.BigEndian.Uint32(frame[4:]) {
			t.Fatalf("answer's correlation id %x, request's %x", out[4:8], frame[4:8])
		}
	})
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// FuzzKafkaProduceBatch wraps arbitrary record bytes in a record batch v2
// with a correct CRC (so that they get past the check a random frame
// almost never passes) and produces it through the listener: the
// decompressors (codec from the attributes) and the record decoder must
// refuse bad input with an error code, never panic, never store part of a
// refused batch, and a batch answered without error must be stored whole.
func FuzzKafkaProduceBatch(f *testing.F) {
	var plain []byte
	for i, v := range []string{"a", "bb", ""} {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte("k"), Value: []byte(v), Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}}}
		body := r.AppendTo(nil)[1:]
		plain = binary.AppendVarint(plain, int64(len(body)))
		plain = append(plain, body...)
	}
	f.Add(plain, int16(0), int32(3))
	f.Add(plain, int16(0), int32(2))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, int16(1), int32(1))
	f.Add([]byte("\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff\xff\xff"), int16(2), int32(1))
	f.Add([]byte{0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7}, int16(3), int32(1))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58}, int16(4), int32(1))
	e, err := engine.Open(engine.Options{Dir: f.TempDir(), Fsync: engine.FsyncNever, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	if err := e.CreateTopic("events"); err != nil {
		f.Fatal(err)
	}
	s := kafka.New(e, kafka.Options{MaxBatchBytes: 1 << 20, Logger: quietLogger()})
	f.Fuzz(func(t *testing.T, recs []byte, attrs int16, n int32) {
		b := kmsg.RecordBatch{Magic: 2, Attributes: attrs & 0x7, LastOffsetDelta: n - 1, ProducerID: -1, ProducerEpoch: -1,
			FirstSequence: -1, NumRecords: n, Records: recs}
		batch := b.AppendTo(nil)
		binary.BigEndian.PutUint32(batch[8:], uint32(len(batch)-12))
		binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], crc32.MakeTable(crc32.Castagnoli)))
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 1000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "events"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		_, before, _ := e.Offsets("events")
		out := s.HandleFrame(kafkaFrame(req, 9))
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		if len(out) < 9 || resp.ReadFrom(out[9:]) != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("answer %x does not decode", out)
		}
		_, after, _ := e.Offsets("events")
		code := resp.Topics[0].Partitions[0].ErrorCode
		switch {
		case code != 0 && after != before:
			t.Fatalf("refused (code %d) but %d messages stored", code, after-before)
		case code == 0 && after-before != uint64(n):
			t.Fatalf("taken, but %d messages stored for %d records", after-before, n)
		}
	})
}
