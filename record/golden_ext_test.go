package record_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/haraqa/haraqa/record"
)

const goldenExtPath = "testdata/golden_batch_v1_ext_zstd.bin"

// goldenExtMessages are the messages of the extended, zstd-compressed
// golden batch: a key, headers (a repeated key, an empty value) and
// timestamps before and after the base.
func goldenExtMessages() []extMsg {
	const base = 1700000000000000000
	line := []byte(`{"method":"GET","path":"/api/v1/users","status":200,"bytes":5120}`)
	return []extMsg{
		{ts: base, key: []byte("user-42"), value: line,
			hdrs: []record.MessageHeader{{Key: "trace-id", Value: []byte("4bf92f3577b34da6")}, {Key: "retry", Value: []byte{}}}},
		{ts: base + 1500, value: line},
		{ts: base - 1, key: []byte("user-42"), value: []byte("ünïcødé"),
			hdrs: []record.MessageHeader{{Key: "trace-id", Value: []byte("a")}, {Key: "trace-id", Value: []byte("b")}}},
		{ts: 0, value: line},
	}
}

func goldenExtBatch(t *testing.T) []byte {
	t.Helper()
	var b record.Builder
	batch := buildExt(t, &b, goldenExtMessages(), record.CodecZstd)
	record.SetProducer(batch, goldenProducerID, goldenSequence)
	record.Stamp(batch, goldenBaseOffset, goldenAppendTime)
	return batch
}

// TestGoldenExtended pins the extended encoding under zstd. The compressed
// bytes depend on the zstd encoder (github.com/klauspost/compress at the
// version in go.mod): after an upgrade that changes them, regenerate with
// go test ./record -run GoldenExtended -update and check that
// TestGoldenExtendedLayout still passes on the new file, which proves the
// format unchanged.
func TestGoldenExtended(t *testing.T) {
	got := goldenExtBatch(t)
	if *update {
		if err := os.WriteFile(goldenExtPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", goldenExtPath, len(got))
	}
	want, err := os.ReadFile(goldenExtPath)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from %s (got %d bytes, want %d)\n got %x\nwant %x", goldenExtPath, len(got), len(want), got, want)
	}
}

// TestGoldenExtendedLayout decodes the golden file: the header fields,
// then the raw payload by hand at the offsets FORMAT.md documents, then
// through the package.
func TestGoldenExtendedLayout(t *testing.T) {
	b, err := os.ReadFile(goldenExtPath)
	if err != nil {
		t.Fatal(err)
	}
	h, err := record.Verify(b)
	if err != nil {
		t.Fatal(err)
	}
	msgs := goldenExtMessages()
	if le.Uint16(b[hFlags:]) != 0x0012 || h.Codec() != record.CodecZstd || !h.Extended() {
		t.Fatalf("flags %#04x, want 0x0012 (extended, zstd)", le.Uint16(b[hFlags:]))
	}
	if h.Count != uint32(len(msgs)) || h.BaseOffset != goldenBaseOffset || h.AppendTime != goldenAppendTime ||
		h.ProducerID != goldenProducerID || h.Sequence != goldenSequence {
		t.Fatalf("header %+v", h)
	}
	payload := b[64 : 64+h.PayloadLen]
	if h.PayloadHash != xxhash.Sum64(payload) {
		t.Fatal("payload hash does not cover the compressed bytes")
	}
	if string(payload[:4]) != "\x28\xb5\x2f\xfd" {
		t.Fatalf("payload starts %x, want the zstd frame magic 28b52ffd", payload[:4])
	}
	raw, err := record.Decompress(nil, b, &h, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != int(h.RawLen) || h.PayloadLen >= h.RawLen {
		t.Fatalf("raw %d bytes, raw_len %d, payload_len %d", len(raw), h.RawLen, h.PayloadLen)
	}

	// By hand: the base timestamp, then the first message field by field.
	if got := int64(le.Uint64(raw)); got != msgs[0].ts {
		t.Fatalf("base timestamp %d, want %d", got, msgs[0].ts)
	}
	var want []byte
	want = append(want, 0)                     // length, patched below
	want = append(want, 0)                     // timestamp delta 0 (zigzag)
	want = append(want, 7)                     // key length
	want = append(want, "user-42"...)          // key
	want = append(want, 2)                     // header count
	want = append(want, 8)                     // header 1 key length
	want = append(want, "trace-id"...)         // header 1 key
	want = append(want, 16)                    // header 1 value length
	want = append(want, "4bf92f3577b34da6"...) // header 1 value
	want = append(want, 5)                     // header 2 key length
	want = append(want, "retry"...)            // header 2 key
	want = append(want, 0)                     // header 2 value length: empty
	want = append(want, msgs[0].value...)
	want[0] = byte(len(want) - 1) // < 128: one byte
	if got := raw[8 : 8+len(want)]; !bytes.Equal(got, want) {
		t.Fatalf("first message\n got %x\nwant %x", got, want)
	}
	// The second message's timestamp delta: +1500 zigzags to 3000, a
	// two-byte varint b8 17; the third's -1 zigzags to 1.
	second := raw[8+len(want):]
	if second[1] != 0xb8 || second[2] != 0x17 {
		t.Fatalf("second message starts %x", second[:4])
	}

	_, got := decodeAll(t, b)
	checkExt(t, got, msgs)
}
