package kafka

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Promise: a batch compressed with any of Kafka's codecs (gzip, snappy as
// a raw block and in Java's xerial framing, lz4 frames, zstd) is stored
// with every record's key, value, headers and timestamp, and read back
// uncompressed with the offsets the produce answer gave.
func TestProduceCodecsRoundTrip(t *testing.T) {
	b := startBroker(t, Options{AutoCreateTopics: true})
	rc := dialRaw(t, b.addr)
	type codecCase struct {
		name   string
		codec  int
		xerial bool
	}
	var want []testRec
	for i, c := range []codecCase{{"none", codecNone, false}, {"gzip", codecGzip, false}, {"snappy", codecSnappy, false},
		{"snappy-xerial", codecSnappy, true}, {"lz4", codecLZ4, false}, {"zstd", codecZstd, false}} {
		var recs []testRec
		for j := range 20 {
			recs = append(recs, testRec{key: fmt.Sprintf("%s-%d", c.name, j), value: fmt.Sprintf("value %d %s", j, bytes.Repeat([]byte("z"), j*10)),
				hdrs: []kmsg.Header{{Key: "codec", Value: []byte(c.name)}}, tsDelta: int64(j)})
		}
		if i == 0 {
			recs[0].key = "" // no key
			recs[0].hdrs = nil
		}
		p := rc.produce("codecs", kafkaBatch(t, c.codec, c.xerial, -1, -1, -1, recs...))
		if p.ErrorCode != 0 || p.BaseOffset != int64(len(want)) {
			t.Fatalf("%s: code %d base %d, want base %d", c.name, p.ErrorCode, p.BaseOffset, len(want))
		}
		want = append(want, recs...)
	}
	var got []fetched
	for off := int64(0); off < int64(len(want)); {
		_, f := rc.fetchAll("codecs", off)
		if len(f) == 0 {
			t.Fatalf("no records at %d", off)
		}
		got = append(got, f...)
		off = f[len(f)-1].off + 1
	}
	for i, w := range want {
		g := got[i]
		if g.off != int64(i) || string(g.rec.Key) != w.key || string(g.rec.Value) != w.value || g.ts != 1_700_000_000_000+w.tsDelta ||
			len(g.rec.Headers) != len(w.hdrs) || len(w.hdrs) > 0 && (g.rec.Headers[0].Key != w.hdrs[0].Key || !bytes.Equal(g.rec.Headers[0].Value, w.hdrs[0].Value)) {
			t.Fatalf("record %d: got off %d ts %d %q/%q %v, want %+v", i, g.off, g.ts, g.rec.Key, g.rec.Value, g.rec.Headers, w)
		}
		if w.key == "" && g.rec.Key != nil {
			t.Fatalf("record %d: key %q, want null", i, g.rec.Key)
		}
	}
	// A fetch in the middle of a batch starts at the offset asked for.
	if _, f := rc.fetchAll("codecs", 25); len(f) == 0 || f[0].off != 25 {
		t.Fatalf("fetch at 25 starts at %v", f)
	}
}

// Promise: bad batches are refused with Kafka's codes and nothing of them
// is stored: a wrong CRC (CORRUPT_MESSAGE), a batch that decompresses past
// the broker's limit, a decompression bomb (MESSAGE_TOO_LARGE), an
// unknown partition (UNKNOWN_TOPIC_OR_PARTITION), a transactional batch
// (INVALID_RECORD); the connection goes on answering.
func TestProduceRefusesBadBatches(t *testing.T) {
	b := startBroker(t, Options{AutoCreateTopics: true, MaxBatchBytes: 64 << 10})
	rc := dialRaw(t, b.addr)
	good := kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: "ok"})
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	big := testRec{value: string(bytes.Repeat([]byte("a"), 1<<20))}
	txn := kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: "t"})
	txn[22] |= attrTransactional
	txn = refreshCRC(txn)
	for _, c := range []struct {
		name string
		recs []byte
		want int16
	}{
		{"bad crc", badCRC, errCorruptMessage},
		{"gzip bomb", kafkaBatch(t, codecGzip, false, -1, -1, -1, big), errMessageTooLarge},
		{"zstd bomb", kafkaBatch(t, codecZstd, false, -1, -1, -1, big), errMessageTooLarge},
		{"lz4 bomb", kafkaBatch(t, codecLZ4, false, -1, -1, -1, big), errMessageTooLarge},
		{"snappy bomb", kafkaBatch(t, codecSnappy, false, -1, -1, -1, big), errMessageTooLarge},
		{"uncompressed too large", kafkaBatch(t, codecNone, false, -1, -1, -1, big), errMessageTooLarge},
		{"transactional", txn, errInvalidRecord},
		{"cut short", good[:len(good)-3], errCorruptMessage},
	} {
		if p := rc.produce("bad", c.recs); p.ErrorCode != c.want {
			t.Errorf("%s: code %d, want %d", c.name, p.ErrorCode, c.want)
		}
	}
	req := produceReq("bad", -1, good)
	req.Topics[0].Partitions[0].Partition = 3
	if p := rc.do(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != errUnknownTopicOrPartition {
		t.Errorf("partition 3: code %d", p.ErrorCode)
	}
	if _, end, _ := b.e.Offsets("bad"); end != 0 {
		t.Fatalf("%d messages stored from refused batches", end)
	}
	if p := rc.produce("bad", good); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("good batch after the bad ones: %+v", p)
	}
}

func refreshCRC(b []byte) []byte {
	b = bytes.Clone(b)
	putCRC(b)
	return b
}

// Promise (idempotent producer): a Kafka producer's retried batch (same
// id, epoch and sequence) is answered with its first offset and stored
// once; a gap in the sequence is refused with OUT_OF_ORDER_SEQUENCE_NUMBER;
// a new epoch from InitProducerId starts its sequences at 0 again.
func TestIdempotentProduce(t *testing.T) {
	b := startBroker(t, Options{AutoCreateTopics: true})
	rc := dialRaw(t, b.addr)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.SetVersion(4)
	ip := rc.do(init).(*kmsg.InitProducerIDResponse)
	if ip.ErrorCode != 0 || ip.ProducerID < 0 {
		t.Fatalf("InitProducerId: %+v", ip)
	}
	recs := []testRec{{value: "a"}, {value: "b"}, {value: "c"}}
	first := kafkaBatch(t, codecNone, false, ip.ProducerID, ip.ProducerEpoch, 0, recs...)
	second := kafkaBatch(t, codecNone, false, ip.ProducerID, ip.ProducerEpoch, 3, recs...)
	for i, c := range []struct {
		recs []byte
		base int64
		code int16
	}{{first, 0, 0}, {second, 3, 0}, {first, 0, 0}, {second, 3, 0},
		{kafkaBatch(t, codecNone, false, ip.ProducerID, ip.ProducerEpoch, 9, recs...), -1, errOutOfOrderSequence}} {
		if p := rc.produce("idem", c.recs); p.ErrorCode != c.code || p.BaseOffset != c.base {
			t.Fatalf("step %d: code %d base %d, want %d %d", i, p.ErrorCode, p.BaseOffset, c.code, c.base)
		}
	}
	if _, end, _ := b.e.Offsets("idem"); end != 6 {
		t.Fatalf("end %d, want 6 (two batches of 3, retries stored once)", end)
	}
	init.ProducerID, init.ProducerEpoch = ip.ProducerID, ip.ProducerEpoch
	bumped := rc.do(init).(*kmsg.InitProducerIDResponse)
	if bumped.ProducerID != ip.ProducerID || bumped.ProducerEpoch != ip.ProducerEpoch+1 {
		t.Fatalf("epoch bump: %+v", bumped)
	}
	if p := rc.produce("idem", kafkaBatch(t, codecNone, false, ip.ProducerID, bumped.ProducerEpoch, 0, recs...)); p.ErrorCode != 0 || p.BaseOffset != 6 {
		t.Fatalf("new epoch from 0: %+v", p)
	}
	txn := kmsg.NewPtrInitProducerIDRequest()
	txn.TransactionalID = kmsg.StringPtr("tx")
	txn.SetVersion(4)
	if r := rc.do(txn).(*kmsg.InitProducerIDResponse); r.ErrorCode != errTransactionalIDAuth {
		t.Fatalf("transactional InitProducerId: %+v", r)
	}
}

// Promise: acks=0 gets no answer (Kafka's rule) but is stored; the next
// request's answer is the next frame on the connection.
func TestAcksZeroNoAnswer(t *testing.T) {
	b := startBroker(t, Options{AutoCreateTopics: true})
	rc := dialRaw(t, b.addr)
	rc.send(produceReq("z", 0, kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: "x"})))
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(9)
	corr := rc.send(meta)
	got, _, err := rc.readFrame()
	if err != nil || got != corr {
		t.Fatalf("first answer: correlation %d (%v), want the Metadata's %d", got, err, corr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, end, _ := b.e.Offsets("z"); end == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("acks=0 batch not stored")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
