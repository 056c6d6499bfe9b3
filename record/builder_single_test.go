package record

import (
	"bytes"
	"testing"
)

// A batch written in parts (header and length, the message itself,
// padding) is byte for byte the batch AppendBatch builds, so the broker
// verifies and stores it the same.
func TestSinglePartsMatchesAppendBatch(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 127, 128, 4095, 1 << 16, 1<<20 + 3} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i*7 + n)
		}
		want, err := AppendBatch(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		head, pad, err := SingleParts(make([]byte, 3), msg)
		if err != nil {
			t.Fatal(err)
		}
		got := append(append(append([]byte(nil), head...), msg...), pad...)
		if !bytes.Equal(got, want) {
			t.Fatalf("%d-byte message: parts differ from AppendBatch", n)
		}
		if _, err := Verify(got); err != nil {
			t.Fatalf("%d-byte message: %v", n, err)
		}
	}
}

// BenchmarkSingle1MiB is the producer's work on one 1 MiB message before
// the socket: copied into a Builder and hashed, or hashed in place
// (SingleParts). Run under callgrind for instruction counts.
func BenchmarkSingle1MiB(b *testing.B) {
	msg := make([]byte, 1<<20)
	b.Run("builder", func(b *testing.B) {
		var bl Builder
		for range b.N {
			bl.Reset()
			if err := bl.Add(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := bl.Finish(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parts", func(b *testing.B) {
		var hb [HeaderSize + 16]byte
		for range b.N {
			if _, _, err := SingleParts(hb[:0], msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
