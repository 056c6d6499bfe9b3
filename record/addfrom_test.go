package record

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

// Promise: AddFrom stores a value read from a stream byte for byte, as
// Add would, after earlier messages; a value over the limit leaves the
// builder as it was.
func TestAddFrom(t *testing.T) {
	for _, size := range []int{0, 1, 127, 128, 40 << 10, 1 << 20} {
		var b Builder
		b.Add([]byte("first"))
		val := bytes.Repeat([]byte("v"), size)
		n, err := b.AddFrom(iotest.OneByteReader(bytes.NewReader(val)), size)
		if err != nil || n != size {
			t.Fatalf("size %d: %d, %v", size, n, err)
		}
		if _, err := b.AddFrom(strings.NewReader("toolong"), 3); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("over the limit: %v", err)
		}
		batch, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		var want Builder
		want.Add([]byte("first"))
		want.Add(val)
		wb, _ := want.Finish()
		if !bytes.Equal(batch, wb) {
			t.Fatalf("size %d: AddFrom's batch differs from Add's", size)
		}
	}
}
