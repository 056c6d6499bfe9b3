package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/haraqa/haraqa/record"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Offsets in a record batch v2 (Kafka's "Message format"): base offset
// (8), batch length (4), partition leader epoch (4), magic (1), CRC (4),
// then attributes ... records, which the CRC covers.
const (
	batchLengthAt  = 8
	batchMagicAt   = 16
	batchCRCAt     = 17
	batchCRCFrom   = 21
	batchHeaderLen = 61 // every field before the records
)

// Attribute bits of a record batch.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// errBatch classifies a produce batch that cannot be taken: it answers
// CORRUPT_MESSAGE (bad CRC, bad lengths) unless wrapped differently.
var (
	errBadBatch      = errors.New("kafka: corrupt record batch")
	errBatchType     = errors.New("kafka: unsupported record batch (magic below 2, transactional or control)")
	errBatchTooLarge = errors.New("kafka: record batch too large")
)

// nextBatch splits the first record batch v2 off recs and decodes its
// header with kmsg; it checks the CRC.
func nextBatch(recs []byte, b *kmsg.RecordBatch) (rest []byte, err error) {
	if len(recs) < batchHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes", errBadBatch, len(recs))
	}
	n := int64(int32(binary.BigEndian.Uint32(recs[batchLengthAt:]))) + 12
	if n < batchHeaderLen || n > int64(len(recs)) {
		return nil, fmt.Errorf("%w: length %d of %d bytes", errBadBatch, n, len(recs))
	}
	if recs[batchMagicAt] != 2 {
		return nil, fmt.Errorf("%w: magic %d", errBatchType, recs[batchMagicAt])
	}
	one := recs[:n]
	if err := b.UnsafeReadFrom(one); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadBatch, err)
	}
	if crc32.Checksum(one[batchCRCFrom:], castagnoli) != uint32(b.CRC) {
		return nil, fmt.Errorf("%w: CRC mismatch", errBadBatch)
	}
	if b.Attributes&(attrTransactional|attrControl) != 0 {
		return nil, errBatchType
	}
	return recs[n:], nil
}

// toHaraqa re-encodes the records of a Kafka batch (raw: its records,
// decompressed) into bld as one haraqa batch in the extended encoding:
// each record keeps its key, headers and timestamp (milliseconds become
// nanoseconds; Kafka's -1, "none", becomes haraqa's 0).
func toHaraqa(b *kmsg.RecordBatch, raw []byte, bld *record.Builder, hdrs []record.MessageHeader) ([]record.MessageHeader, error) {
	bld.Reset()
	if b.NumRecords <= 0 || int64(b.NumRecords) > int64(len(raw)) || b.LastOffsetDelta != b.NumRecords-1 {
		return hdrs, fmt.Errorf("%w: %d records, last offset delta %d", errBadBatch, b.NumRecords, b.LastOffsetDelta)
	}
	var rec kmsg.Record
	for i := range b.NumRecords {
		l, k := binary.Varint(raw)
		if k <= 0 || l < 0 || l > int64(len(raw)-k) {
			return hdrs, fmt.Errorf("%w: record %d length", errBadBatch, i)
		}
		if err := rec.UnsafeReadFrom(raw[:k+int(l)]); err != nil {
			return hdrs, fmt.Errorf("%w: record %d: %v", errBadBatch, i, err)
		}
		raw = raw[k+int(l):]
		if rec.OffsetDelta != i {
			return hdrs, fmt.Errorf("%w: record %d has offset delta %d", errBadBatch, i, rec.OffsetDelta)
		}
		var ts int64
		if ms := b.FirstTimestamp + rec.TimestampDelta64; ms >= 0 && b.FirstTimestamp >= 0 {
			ts = ms * 1e6
		}
		hdrs = hdrs[:0]
		for _, h := range rec.Headers {
			hdrs = append(hdrs, record.MessageHeader{Key: h.Key, Value: h.Value})
		}
		if err := bld.AddMessage(ts, rec.Key, rec.Value, hdrs); err != nil {
			return hdrs, fmt.Errorf("%w: %v", errBatchTooLarge, err)
		}
	}
	if len(raw) != 0 {
		return hdrs, fmt.Errorf("%w: %d bytes after the last record", errBadBatch, len(raw))
	}
	return hdrs, nil
}

// appendKafka appends the messages of one haraqa batch (h, its raw
// payload decompressed) to dst as one uncompressed record batch v2 with
// the same offsets; a message without a timestamp gets the batch's append
// time. Only messages at or after from are kept (a batch that would keep
// none appends nothing).
func appendKafka(dst []byte, h *record.Header, raw []byte, from uint64) ([]byte, error) {
	var it record.Iter
	it.ResetPayload(raw, h)
	appendMs := h.AppendTime / 1e6
	start := len(dst)
	var b kmsg.RecordBatch
	b.Magic = 2
	b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	b.FirstOffset = int64(h.BaseOffset)
	dst = b.AppendTo(dst) // the header, fixed up below
	first, last := int64(-1), int64(-1)
	maxTs := int64(-1)
	n := int32(0)
	for off := h.BaseOffset; ; off++ {
		m, ok := it.NextMessage()
		if !ok {
			break
		}
		if off < from {
			continue
		}
		ts := appendMs
		if m.Timestamp != 0 {
			ts = m.Timestamp / 1e6
		}
		if first < 0 {
			first = int64(off)
			b.FirstTimestamp = ts
		}
		last = int64(off)
		maxTs = max(maxTs, ts)
		dst = appendRecord(dst, ts-b.FirstTimestamp, int32(int64(off)-first), &m)
		n++
	}
	if err := it.Err(); err != nil {
		return dst[:start], err
	}
	if n == 0 {
		return dst[:start], nil
	}
	out := dst[start:]
	binary.BigEndian.PutUint64(out, uint64(first))
	binary.BigEndian.PutUint32(out[batchLengthAt:], uint32(len(out)-12))
	// attributes 0 (no codec, create time) stay as encoded.
	binary.BigEndian.PutUint32(out[23:], uint32(last-first))
	binary.BigEndian.PutUint64(out[27:], uint64(b.FirstTimestamp))
	binary.BigEndian.PutUint64(out[35:], uint64(maxTs))
	binary.BigEndian.PutUint32(out[57:], uint32(n))
	binary.BigEndian.PutUint32(out[batchCRCAt:], crc32.Checksum(out[batchCRCFrom:], castagnoli))
	return dst, nil
}

// appendRecord appends one Kafka record (varints are zigzag, as Go's).
func appendRecord(dst []byte, tsDelta int64, offDelta int32, m *record.Message) []byte {
	var scratch [binary.MaxVarintLen64]byte
	size := 1 + binary.PutVarint(scratch[:], tsDelta) + binary.PutVarint(scratch[:], int64(offDelta))
	size += bytesLen(m.Key, true) + bytesLen(m.Value, false)
	size += binary.PutVarint(scratch[:], int64(m.NumHeaders()))
	hs := m.Headers()
	for k, v, ok := hs.Next(); ok; k, v, ok = hs.Next() {
		size += bytesLen(k, false) + bytesLen(v, false)
	}
	dst = binary.AppendVarint(dst, int64(size))
	dst = append(dst, 0) // attributes
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, int64(offDelta))
	dst = appendBytes(dst, m.Key, true)
	dst = appendBytes(dst, m.Value, false)
	dst = binary.AppendVarint(dst, int64(m.NumHeaders()))
	hs = m.Headers()
	for k, v, ok := hs.Next(); ok; k, v, ok = hs.Next() {
		dst = appendBytes(dst, k, false)
		dst = appendBytes(dst, v, false)
	}
	return dst
}

// bytesLen is the encoded size of a varint-length-prefixed field; an empty
// nullable field (a key) is encoded as null (-1).
func bytesLen(b []byte, nullable bool) int {
	if nullable && len(b) == 0 {
		return 1
	}
	var scratch [binary.MaxVarintLen64]byte
	return binary.PutVarint(scratch[:], int64(len(b))) + len(b)
}

func appendBytes(dst, b []byte, nullable bool) []byte {
	if nullable && len(b) == 0 {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
