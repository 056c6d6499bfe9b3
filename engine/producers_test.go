package engine

import (
	"errors"
	"testing"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

func idemBatch(t *testing.T, pid uint64, seq uint32, key uint64) []byte {
	t.Helper()
	b := batchOf(t, genMsgs(key, 3, 20)...)
	record.SetProducer(b, pid, seq)
	return b
}

// Promise (idempotent producer): a retried batch (same producer id and
// sequence) is answered with its original offset and stored once; a gap
// in the sequence is refused; other producers are independent; and the
// state survives a restart, rebuilt from the log tail.
func TestIdempotentAppend(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	ctx := t.Context()
	pid := e.NewProducerID()
	if pid == 0 || pid == e.NewProducerID() {
		t.Fatal("producer ids must be nonzero and fresh")
	}
	var bases []uint64
	for seq := uint32(0); seq < 5; seq++ {
		base, err := e.Append(ctx, "t", idemBatch(t, pid, seq, uint64(seq)))
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, base)
	}
	// Retries of the last and of an older batch: original offsets, no append.
	for _, seq := range []uint32{4, 2} {
		base, err := e.Append(ctx, "t", idemBatch(t, pid, seq, uint64(seq)))
		if err != nil || base != bases[seq] {
			t.Fatalf("retry of seq %d: base %d err %v, want %d", seq, base, err, bases[seq])
		}
	}
	if _, end, _ := e.Offsets("t"); end != 15 {
		t.Fatalf("end %d after retries, want 15 (5 batches of 3)", end)
	}
	// A gap is refused, and nothing is stored.
	if _, err := e.Append(ctx, "t", idemBatch(t, pid, 7, 7)); !errors.Is(err, ErrSequence) || !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("gap: %v, want ErrSequence", err)
	}
	// Another producer, and plain batches, are independent.
	other := e.NewProducerID()
	if _, err := e.Append(ctx, "t", idemBatch(t, other, 0, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Append(ctx, "t", batchOf(t, msgBytes(1, 5))); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for _, img := range []*vfs.MemFS{fs, fs.Crash()} {
		opts.FS = img
		e = openEngine(t, opts)
		base, err := e.Append(ctx, "t", idemBatch(t, pid, 4, 4))
		if err != nil || base != bases[4] {
			t.Fatalf("retry after restart: base %d err %v, want %d", base, err, bases[4])
		}
		if _, err := e.Append(ctx, "t", idemBatch(t, pid, 5, 5)); err != nil {
			t.Fatalf("next sequence after restart: %v", err)
		}
		if _, err := e.Append(ctx, "t", idemBatch(t, pid, 9, 9)); !errors.Is(err, ErrSequence) {
			t.Fatalf("gap after restart: %v", err)
		}
		e.Close()
	}
}

// Promise (no duplicate under concurrency): the same idempotent batch sent
// by several goroutines at once is stored exactly once; every caller gets
// either its offset or a retriable error.
func TestIdempotentConcurrentDuplicates(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	pid := e.NewProducerID()
	for seq := uint32(0); seq < 50; seq++ {
		// One channel for each caller's pair: with separate channels for
		// offsets and errors, one caller's offset could be read with
		// another's error (a retriable error's 0 taken for an answer).
		type answer struct {
			base uint64
			err  error
		}
		results := make(chan answer, 4)
		for range 4 {
			go func() {
				base, err := e.Append(t.Context(), "t", idemBatch(t, pid, seq, uint64(seq)))
				results <- answer{base, err}
			}()
		}
		var got []uint64
		for range 4 {
			r := <-results
			base, err := r.base, r.err
			if err != nil && !errors.Is(err, ErrStorage) {
				t.Fatalf("seq %d: %v", seq, err)
			}
			if err == nil {
				got = append(got, base)
			}
		}
		for _, b := range got[1:] {
			if b != got[0] {
				t.Fatalf("seq %d answered with offsets %v", seq, got)
			}
		}
	}
	if _, end, _ := e.Offsets("t"); end != 150 {
		t.Fatalf("end %d, want 150: a batch was stored twice or lost", end)
	}
}

// Promise (state rebuilt from sealed segments too): when the newest
// batches of a producer sit in sealed, not yet mapped segments after a
// restart, a retry is still recognised.
func TestIdempotentRecoverFromSealedSegments(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentEntries = 2
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	pid := e.NewProducerID()
	var bases []uint64
	for seq := uint32(0); seq < 6; seq++ {
		base, err := e.Append(t.Context(), "t", idemBatch(t, pid, seq, uint64(seq)))
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, base)
	}
	// An append from another producer rolls a fresh segment: the active one
	// then holds nothing of pid.
	if _, err := e.Append(t.Context(), "t", batchOf(t, msgBytes(1, 5))); err != nil {
		t.Fatal(err)
	}
	e = reopen(t, e, opts)
	for _, seq := range []uint32{5, 4} {
		base, err := e.Append(t.Context(), "t", idemBatch(t, pid, seq, uint64(seq)))
		if err != nil || base != bases[seq] {
			t.Fatalf("retry of seq %d after restart: base %d err %v, want %d", seq, base, err, bases[seq])
		}
	}
	if _, end, _ := e.Offsets("t"); end != 19 {
		t.Fatalf("end %d, want 19", end)
	}
}
