package record_test

import (
	"testing"

	"github.com/haraqa/haraqa/record"
)

// The in-place header accessors read the same fields ParseHeader decodes,
// so code outside record never needs the header's byte offsets.
func TestHeaderAccessorsMatchParseHeader(t *testing.T) {
	b := build(t, [][]byte{[]byte("one"), []byte("two"), []byte("three")})
	record.Stamp(b, 1<<40+7, 1_700_000_000_123_456_789)
	h, err := record.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := record.CountOf(b); got != h.Count {
		t.Errorf("CountOf = %d, want %d", got, h.Count)
	}
	if got := record.PayloadLenOf(b); got != h.PayloadLen {
		t.Errorf("PayloadLenOf = %d, want %d", got, h.PayloadLen)
	}
	if got := record.BaseOffsetOf(b); got != h.BaseOffset || got != 1<<40+7 {
		t.Errorf("BaseOffsetOf = %d, want %d", got, h.BaseOffset)
	}
	if got := record.AppendTimeOf(b); got != h.AppendTime || got != 1_700_000_000_123_456_789 {
		t.Errorf("AppendTimeOf = %d, want %d", got, h.AppendTime)
	}
}
