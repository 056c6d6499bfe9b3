package record_test

import (
	"errors"
	"testing"

	"github.com/haraqa/haraqa/record"
)

func TestIterMalformed(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		count   uint32
		want    []string // messages returned before the stop
		wantErr error
	}{
		{"valid", []byte{1, 'a', 0, 2, 'b', 'c'}, 3, []string{"a", "", "bc"}, nil},
		{"zero count, empty payload", nil, 0, nil, nil},
		{"length past end", []byte{5, 'a', 'b'}, 1, nil, record.ErrCorrupt},
		{"second length past end", []byte{1, 'a', 3, 'b'}, 2, []string{"a"}, record.ErrCorrupt},
		{"length one past end", []byte{2, 'a'}, 1, nil, record.ErrCorrupt},
		{"varint cut off", []byte{0x80}, 1, nil, record.ErrCorrupt},
		{"varint cut off after a message", []byte{1, 'a', 0xff, 0xff}, 2, []string{"a"}, record.ErrCorrupt},
		{"varint overflows 64 bits", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 1, nil, record.ErrCorrupt},
		{"length 2^64-1", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'x'}, 1, nil, record.ErrCorrupt},
		{"length 2^63", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 1, nil, record.ErrCorrupt},
		{"leftover bytes", []byte{1, 'a', 0}, 1, []string{"a"}, record.ErrCorrupt},
		{"leftover bytes, zero count", []byte{0}, 0, nil, record.ErrCorrupt},
		{"fewer messages than count", []byte{1, 'a', 1, 'b'}, 3, []string{"a", "b"}, record.ErrCorrupt},
		{"empty payload, count 1", nil, 1, nil, record.ErrCorrupt},
		{"huge count", []byte{0, 0}, ^uint32(0), []string{"", ""}, record.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var it record.Iter
			it.Reset(tt.payload, tt.count)
			var got []string
			for m, ok := it.Next(); ok; m, ok = it.Next() {
				got = append(got, string(m))
				if len(got) > len(tt.payload)+1 {
					t.Fatalf("more messages than payload bytes: %q", got)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("messages %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("messages %q, want %q", got, tt.want)
				}
			}
			wantErr(t, "Err", it.Err(), tt.wantErr)
			// The iterator stays stopped, and keeps its first error.
			first := it.Err()
			for range 3 {
				if _, ok := it.Next(); ok {
					t.Fatal("Next returned a message after the end")
				}
			}
			if it.Err() != first {
				t.Fatalf("Err changed from %v to %v", first, it.Err())
			}
		})
	}
}

func TestIterZeroValue(t *testing.T) {
	var it record.Iter
	if m, ok := it.Next(); ok || m != nil || it.Err() != nil {
		t.Fatalf("zero Iter: %q, %v, %v", m, ok, it.Err())
	}
}

// TestIterReset: Reset clears an earlier error.
func TestIterReset(t *testing.T) {
	var it record.Iter
	it.Reset([]byte{9}, 1)
	it.Next()
	if !errors.Is(it.Err(), record.ErrCorrupt) {
		t.Fatalf("Err = %v", it.Err())
	}
	it.Reset([]byte{1, 'z'}, 1)
	m, ok := it.Next()
	if !ok || string(m) != "z" || it.Err() != nil {
		t.Fatalf("after Reset: %q, %v, %v", m, ok, it.Err())
	}
	if _, ok := it.Next(); ok || it.Err() != nil {
		t.Fatalf("end after Reset: %v, %v", ok, it.Err())
	}
}
