package record_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/haraqa/haraqa/record"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const goldenPath = "testdata/golden_batch_v1.bin"

// Fixed inputs of the golden batch. Changing any of them changes the file.
const (
	goldenBaseOffset = 42
	goldenAppendTime = 1700000000000000000
	goldenProducerID = 0x1122334455667788
	goldenSequence   = 7
)

func goldenMessages() [][]byte {
	twoHundred := make([]byte, 200) // needs a two-byte length varint
	for i := range twoHundred {
		twoHundred[i] = byte(i)
	}
	return [][]byte{
		[]byte("hello, haraqa"),
		{},
		twoHundred,
		{0x00, 0xff, 0x80},
		[]byte("ünïcødé"),
	}
}

func goldenBatch(t *testing.T) []byte {
	t.Helper()
	b := appendBatch(t, nil, goldenMessages()...)
	record.SetProducer(b, goldenProducerID, goldenSequence)
	record.Stamp(b, goldenBaseOffset, goldenAppendTime)
	return b
}

// TestGolden pins the on-disk format. Regenerate the file only for a
// deliberate format change, with: go test ./record -run Golden -update
func TestGolden(t *testing.T) {
	got := goldenBatch(t)
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", goldenPath, len(got))
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("encoding differs from %s at byte %d (got %d bytes, want %d)\n got %x\nwant %x",
			goldenPath, i, len(got), len(want), got, want)
	}
}

// TestGoldenLayout decodes the golden file by hand, at the offsets FORMAT.md
// documents, and then through the package.
func TestGoldenLayout(t *testing.T) {
	b, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	msgs := goldenMessages()
	var payload []byte
	for _, m := range msgs {
		payload = append(payload, byte(len(m)))
		if len(m) >= 0x80 {
			payload[len(payload)-1] |= 0x80
			payload = append(payload, byte(len(m)>>7))
		}
		payload = append(payload, m...)
	}
	padded := (len(payload) + 7) &^ 7
	if len(b) != 64+padded {
		t.Fatalf("file is %d bytes, want 64 + %d", len(b), padded)
	}
	if padded == len(payload) {
		t.Fatal("golden payload needs padding to cover it; change the messages")
	}

	checks := []struct {
		field     string
		off, size int
		want      uint64
	}{
		{"magic", hMagic, 4, uint64(le.Uint32([]byte("HRQB")))},
		{"version", hVersion, 2, 1},
		{"flags", hFlags, 2, 0},
		{"payload length", hPayloadLen, 4, uint64(len(payload))},
		{"count", hCount, 4, uint64(len(msgs))},
		{"base offset", hBaseOffset, 8, goldenBaseOffset},
		{"append time", hAppendTime, 8, goldenAppendTime},
		{"producer id", hProducerID, 8, goldenProducerID},
		{"sequence", hSequence, 4, goldenSequence},
		{"raw length", hRawLen, 4, uint64(len(payload))},
		{"payload hash", hPayloadHash, 8, xxhash.Sum64(payload)},
		{"header hash", hHeaderHash, 8, xxhash.Sum64(b[:56])},
	}
	for _, c := range checks {
		var got uint64
		switch c.size {
		case 2:
			got = uint64(le.Uint16(b[c.off:]))
		case 4:
			got = uint64(le.Uint32(b[c.off:]))
		case 8:
			got = le.Uint64(b[c.off:])
		}
		if got != c.want {
			t.Errorf("%s at [%d, %d) = %#x, want %#x", c.field, c.off, c.off+c.size, got, c.want)
		}
	}
	if string(b[:4]) != "HRQB" {
		t.Errorf("magic bytes %q", b[:4])
	}
	if !bytes.Equal(b[64:64+len(payload)], payload) {
		t.Errorf("payload bytes differ")
	}
	if !record.IsZero(b[64+len(payload):]) {
		t.Errorf("padding is not zero: %x", b[64+len(payload):])
	}

	h, got := readMessages(t, b)
	checkMessages(t, got, msgs)
	if h.BaseOffset != goldenBaseOffset || h.AppendTime != goldenAppendTime ||
		h.ProducerID != goldenProducerID || h.Sequence != goldenSequence {
		t.Errorf("decoded header %+v", h)
	}
}
