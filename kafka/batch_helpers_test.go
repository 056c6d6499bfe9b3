package kafka

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type testRec struct {
	key, value string
	hdrs       []kmsg.Header
	tsDelta    int64
}

// kafkaBatch encodes recs as one record batch v2 compressed with codec
// (xerial framing for snappy when xerial is set), with the producer
// fields given.
func kafkaBatch(t testing.TB, codec int, xerial bool, pid int64, epoch int16, seq int32, recs ...testRec) []byte {
	t.Helper()
	var raw []byte
	for i, r := range recs {
		var key []byte
		if r.key != "" {
			key = []byte(r.key)
		}
		rec := kmsg.Record{TimestampDelta64: r.tsDelta, OffsetDelta: int32(i), Key: key, Value: []byte(r.value), Headers: r.hdrs}
		body := rec.AppendTo(nil)[1:]
		raw = binary.AppendVarint(raw, int64(len(body)))
		raw = append(raw, body...)
	}
	var data []byte
	switch codec {
	case codecNone:
		data = raw
	case codecGzip:
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(raw)
		w.Close()
		data = b.Bytes()
	case codecSnappy:
		if !xerial {
			data = snappy.Encode(nil, raw)
			break
		}
		data = append(data, xerialMagic...)
		data = binary.BigEndian.AppendUint32(data, 1)
		data = binary.BigEndian.AppendUint32(data, 1)
		for len(raw) > 0 { // two blocks, to walk the framing
			n := min(len(raw), max(len(raw)/2, 1))
			blk := snappy.Encode(nil, raw[:n])
			data = binary.BigEndian.AppendUint32(data, uint32(len(blk)))
			data = append(data, blk...)
			raw = raw[n:]
		}
	case codecLZ4:
		var b bytes.Buffer
		w := lz4.NewWriter(&b)
		w.Write(raw)
		w.Close()
		data = b.Bytes()
	case codecZstd:
		enc, _ := zstd.NewWriter(nil)
		data = enc.EncodeAll(raw, nil)
	}
	b := kmsg.RecordBatch{Magic: 2, Attributes: int16(codec), LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_000,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(len(recs)), Records: data}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[batchLengthAt:], uint32(len(out)-12))
	putCRC(out)
	return out
}

func putCRC(b []byte) {
	binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchCRCFrom:], castagnoli))
}

func produceReq(topic string, acks int16, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = records
	rt.Partitions = append(rt.Partitions, p)
	req.Topics = append(req.Topics, rt)
	req.SetVersion(9)
	return req
}

func fetchReq(topic string, offset int64, wait, minBytes, maxBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = wait, minBytes, maxBytes
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	p := kmsg.NewFetchRequestTopicPartition()
	p.FetchOffset = offset
	p.PartitionMaxBytes = maxBytes
	rt.Partitions = append(rt.Partitions, p)
	req.Topics = append(req.Topics, rt)
	req.SetVersion(12)
	return req
}

// produce sends one batch and returns the partition's answer.
func (rc *rawClient) produce(topic string, records []byte) kmsg.ProduceResponseTopicPartition {
	rc.t.Helper()
	resp := rc.do(produceReq(topic, -1, records)).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0]
}

type fetched struct {
	off, ts int64
	rec     kmsg.Record
}

// fetchAll reads the partition's record batches at offset and decodes
// their records (uncompressed, as the listener sends them).
func (rc *rawClient) fetchAll(topic string, offset int64) (kmsg.FetchResponseTopicPartition, []fetched) {
	rc.t.Helper()
	resp := rc.do(fetchReq(topic, offset, 0, 0, 1<<20)).(*kmsg.FetchResponse)
	p := resp.Topics[0].Partitions[0]
	return p, decodeBatches(rc.t, p.RecordBatches)
}

func decodeBatches(t testing.TB, data []byte) []fetched {
	t.Helper()
	var out []fetched
	for len(data) > 0 {
		var b kmsg.RecordBatch
		rest, err := nextBatch(data, &b)
		if err != nil {
			t.Fatalf("fetched batch: %v", err)
		}
		raw := b.Records
		for range b.NumRecords {
			l, k := binary.Varint(raw)
			var r kmsg.Record
			if err := r.ReadFrom(raw[:k+int(l)]); err != nil {
				t.Fatal(err)
			}
			raw = raw[k+int(l):]
			out = append(out, fetched{b.FirstOffset + int64(r.OffsetDelta), b.FirstTimestamp + r.TimestampDelta64, r})
		}
		data = rest
	}
	return out
}
