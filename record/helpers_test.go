package record_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/haraqa/haraqa/record"
)

// Header field offsets as documented in FORMAT.md. The tests use their own
// copy on purpose: they pin the documented layout instead of trusting the
// package constants they check.
const (
	hMagic       = 0
	hVersion     = 4
	hFlags       = 6
	hPayloadLen  = 8
	hCount       = 12
	hBaseOffset  = 16
	hAppendTime  = 24
	hProducerID  = 32
	hSequence    = 40
	hRawLen      = 44
	hPayloadHash = 48
	hHeaderHash  = 56
)

var le = binary.LittleEndian

// genMsgs returns n deterministic messages; size(i) gives the length of
// message i. All messages share one backing array.
func genMsgs(n int, size func(i int) int) [][]byte {
	total := 0
	for i := range n {
		total += size(i)
	}
	backing := make([]byte, total)
	msgs := make([][]byte, n)
	off := 0
	for i := range n {
		m := backing[off : off+size(i) : off+size(i)]
		for j := range m {
			m[j] = byte(i*31 + j*7 + 1)
		}
		msgs[i] = m
		off += len(m)
	}
	return msgs
}

// varied cycles through lengths that exercise 1-, 2- and 3-byte varints.
func varied(i int) int {
	lengths := [...]int{0, 1, 2, 7, 8, 100, 127, 128, 129, 300, 16383, 16384}
	if i%50 == 49 {
		return lengths[(i/50)%len(lengths)]
	}
	return i % 130
}

// appendBatch encodes msgs with AppendBatch and fails the test on error.
func appendBatch(t testing.TB, dst []byte, msgs ...[]byte) []byte {
	t.Helper()
	b, err := record.AppendBatch(dst, msgs...)
	if err != nil {
		t.Fatalf("AppendBatch(%d messages): %v", len(msgs), err)
	}
	return b
}

// build encodes msgs with a fresh Builder and returns a copy of the batch.
func build(t testing.TB, msgs [][]byte) []byte {
	t.Helper()
	var b record.Builder
	b.Reset()
	for i, m := range msgs {
		if err := b.Add(m); err != nil {
			t.Fatalf("Add(message %d, %d bytes): %v", i, len(m), err)
		}
	}
	batch, err := b.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return append([]byte(nil), batch...)
}

// readMessages verifies batch and returns its messages (aliasing batch).
func readMessages(t testing.TB, batch []byte) (record.Header, [][]byte) {
	t.Helper()
	h, err := record.Verify(batch)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var out [][]byte
	it := record.Messages(batch, &h)
	for m, ok := it.Next(); ok; m, ok = it.Next() {
		out = append(out, m)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("Iter.Err after %d messages: %v", len(out), err)
	}
	return h, out
}

// checkMessages compares got with want message by message.
func checkMessages(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("message %d: got %d bytes %.16x..., want %d bytes %.16x...",
				i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
}

// rehash recomputes the header hash in place after a test edited a header
// field, so that the edit reaches the checks after the hash.
func rehash(b []byte) []byte {
	le.PutUint64(b[hHeaderHash:], xxhash.Sum64(b[:hHeaderHash]))
	return b
}

// flip returns a copy of b with bit (0..7) of byte i inverted.
func flip(b []byte, i, bit int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1 << bit
	return c
}

// wantErr fails the test unless err matches target (nil means success).
func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case target != nil && !errors.Is(err, target):
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}
