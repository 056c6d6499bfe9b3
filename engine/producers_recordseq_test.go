package engine

import (
	"errors"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// Promise (idempotent producer counting messages, as Kafka's do): a
// producer whose id carries RecordSequenced numbers each batch by its first
// message, so the batch after sequence s of n messages is s+n; a retry is
// answered with its original offset and stored once, a gap is refused, and
// the sequence wraps from 2^31-1 to 0 as Kafka's does.
func TestRecordSequencedProducer(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	ctx := t.Context()
	pid := RecordSequenced | 77
	var bases []uint64
	for i, seq := range []uint32{0, 3, 6} { // 3 messages per batch
		base, err := e.Append(ctx, "t", idemBatch(t, pid, seq, uint64(i)))
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		bases = append(bases, base)
	}
	if base, err := e.Append(ctx, "t", idemBatch(t, pid, 3, 1)); err != nil || base != bases[1] {
		t.Fatalf("retry of seq 3: base %d err %v, want %d", base, err, bases[1])
	}
	if _, err := e.Append(ctx, "t", idemBatch(t, pid, 10, 9)); !errors.Is(err, ErrSequence) {
		t.Fatalf("gap (10 after 6+3): %v, want ErrSequence", err)
	}
	if _, end, _ := e.Offsets("t"); end != 9 {
		t.Fatalf("end %d, want 9", end)
	}
	// Wrap: 2^31-2 with 3 messages is followed by 1.
	wrap := RecordSequenced | 78
	for _, seq := range []uint32{1<<31 - 2, 1} {
		if _, err := e.Append(ctx, "t", idemBatch(t, wrap, seq, 5)); err != nil {
			t.Fatalf("wrap seq %d: %v", seq, err)
		}
	}
}
