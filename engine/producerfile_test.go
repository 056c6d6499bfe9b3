package engine

import (
	"context"
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// BenchmarkOpenProducerState is the open time of a cleanly closed engine
// holding one topic of 20,000 batches that never carried producer ids:
// the producer state must come from its checkpoint, not from reading the
// newest batch headers of the log.
func BenchmarkOpenProducerState(b *testing.B) {
	opts := Options{Dir: b.TempDir(), Fsync: FsyncNever, ScrubBytesPerSec: -1, Logger: quietLogger()}
	e, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	mustCreate(b, e, "t")
	batch := batchOf(b, msgBytes(1, 10))
	const batches = 20000
	for i := 0; i < batches; i += 500 {
		var ps []Pending
		for range 500 {
			p, err := e.Enqueue(context.Background(), "t", append([]byte(nil), batch...))
			if err != nil {
				b.Fatal(err)
			}
			ps = append(ps, p)
		}
		for _, p := range ps {
			if _, err := p.Wait(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	var open time.Duration
	for b.Loop() {
		start := time.Now()
		e, err := Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		open += time.Since(start)
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(open.Microseconds())/float64(b.N), "µs/open")
}

// appendPlain appends n one-message batches without producer ids,
// pipelined.
func appendPlain(tb testing.TB, e *Engine, topic string, n int) {
	tb.Helper()
	batch := batchOf(tb, msgBytes(1, 10))
	for i := 0; i < n; i += 500 {
		var ps []Pending
		for range min(500, n-i) {
			p, err := e.Enqueue(context.Background(), topic, append([]byte(nil), batch...))
			if err != nil {
				tb.Fatal(err)
			}
			ps = append(ps, p)
		}
		for _, p := range ps {
			if _, err := p.Wait(); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// wantDuplicate checks that a retry of (pid, seq) is answered with base
// and stores nothing.
func wantDuplicate(t *testing.T, e *Engine, pid uint64, seq uint32, base uint64) {
	t.Helper()
	_, end0, _ := e.Offsets("t")
	got, err := e.Append(t.Context(), "t", idemBatch(t, pid, seq, uint64(seq)))
	if err != nil || got != base {
		t.Fatalf("retry of producer %d seq %d: base %d err %v, want %d", pid, seq, got, err, base)
	}
	if _, end, _ := e.Offsets("t"); end != end0 {
		t.Fatalf("a retry was stored again: end %d, was %d", end, end0)
	}
}

// A producer's retry is recognised after a clean restart however many
// batches of others followed its last one: the state comes from the
// producer checkpoint, not from a bounded read of the log's tail.
func TestProducerStateKeptBeyondScanWindow(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	pid := e.NewProducerID()
	base, err := e.Append(t.Context(), "t", idemBatch(t, pid, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	appendPlain(t, e, "t", recoverBatches+100)
	e = reopen(t, e, opts)
	wantDuplicate(t, e, pid, 0, base)
}

// A topic's idempotent-producer state is right after a restart whatever
// became of its checkpoint file: missing, garbage, older than the log (the
// batches after it are read), claiming more than the log holds (a crash
// cut the log below it), or from another history of the log (the batch
// where it ends differs): every case but the older one falls back to
// reading the log, and no retry is stored twice or answered with an
// offset the log does not hold.
func TestProducerCheckpointDamage(t *testing.T) {
	type setup struct {
		img          *vfs.MemFS
		pid          uint64
		bases        []uint64 // by sequence
		fromFile     bool     // the checkpoint must be used
		newSeq       uint32   // the next sequence, to be appended as new
		wantNewBase  uint64
		foreign      uint64 // a producer only the bad file knows (0: none)
		foreignSeq   uint32
		foreignWrong uint64
	}
	file := memDir + "/topics/t/" + producersName
	// build writes seqs [0, n) of one producer, closes cleanly (the
	// checkpoint covers them), and returns the engine reopened.
	build := func(t *testing.T, fs *vfs.MemFS, n uint32) (*Engine, uint64, []uint64) {
		opts := memOpts(fs)
		e := openEngine(t, opts)
		mustCreate(t, e, "t")
		pid := e.NewProducerID()
		var bases []uint64
		for seq := range n {
			b, err := e.Append(t.Context(), "t", idemBatch(t, pid, seq, uint64(seq)))
			if err != nil {
				t.Fatal(err)
			}
			bases = append(bases, b)
		}
		return reopen(t, e, opts), pid, bases
	}
	cases := map[string]func(t *testing.T) setup{
		"missing": func(t *testing.T) setup {
			fs := vfs.NewMemFS()
			e, pid, bases := build(t, fs, 5)
			img := fs.Crash()
			e.Close()
			if err := img.Remove(file); err != nil {
				t.Fatal(err)
			}
			return setup{img: img, pid: pid, bases: bases, newSeq: 5, wantNewBase: 15}
		},
		"garbage": func(t *testing.T) setup {
			fs := vfs.NewMemFS()
			e, pid, bases := build(t, fs, 5)
			img := fs.Crash()
			e.Close()
			mustCorrupt(t, img, file, flip(30))
			return setup{img: img, pid: pid, bases: bases, newSeq: 5, wantNewBase: 15}
		},
		"older-than-log": func(t *testing.T) setup {
			fs := vfs.NewMemFS()
			e, pid, bases := build(t, fs, 5)
			for seq := uint32(5); seq < 8; seq++ { // after the checkpoint
				b, err := e.Append(t.Context(), "t", idemBatch(t, pid, seq, uint64(seq)))
				if err != nil {
					t.Fatal(err)
				}
				bases = append(bases, b)
			}
			img := fs.Crash()
			return setup{img: img, pid: pid, bases: bases, fromFile: true, newSeq: 8, wantNewBase: 24}
		},
		"ahead-of-log": func(t *testing.T) setup {
			fs := vfs.NewMemFS()
			e, pid, bases := build(t, fs, 5)
			img := fs.Crash() // the log ends at 15
			// Later: a plain batch, then seq 5 at 16, checkpointed at close.
			mustAppend(t, e, "t", batchOf(t, msgBytes(1, 5)))
			if b, err := e.Append(t.Context(), "t", idemBatch(t, pid, 5, 5)); err != nil || b != 16 {
				t.Fatalf("seq 5 at %d (%v), want 16", b, err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if err := vfs.WriteFileAtomic(img, file, mustRead(t, fs, file)); err != nil {
				t.Fatal(err)
			}
			return setup{img: img, pid: pid, bases: bases, newSeq: 5, wantNewBase: 15}
		},
		"other-history": func(t *testing.T) setup {
			fs := vfs.NewMemFS()
			e, pid, bases := build(t, fs, 5)
			img := fs.Crash()
			e.Close()
			// The same offsets written by another producer elsewhere.
			other := vfs.NewMemFS()
			e2, pid2, _ := build(t, other, 5)
			e2.Close()
			if err := vfs.WriteFileAtomic(img, file, mustRead(t, other, file)); err != nil {
				t.Fatal(err)
			}
			return setup{img: img, pid: pid, bases: bases, newSeq: 5, wantNewBase: 15, foreign: pid2, foreignSeq: 4, foreignWrong: 12}
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			opts := memOpts(s.img)
			e := openEngine(t, opts)
			tp, err := e.topic("t")
			if err != nil {
				t.Fatal(err)
			}
			var ps producers
			if used := ps.fromCheckpoint(tp); used != s.fromFile {
				t.Fatalf("checkpoint used: %v, want %v", used, s.fromFile)
			}
			for seq := range s.bases {
				wantDuplicate(t, e, s.pid, uint32(seq), s.bases[seq])
			}
			if s.foreign != 0 {
				// Unknown to this log: a first batch, appended.
				b, err := e.Append(t.Context(), "t", idemBatch(t, s.foreign, s.foreignSeq, 99))
				if err != nil || b == s.foreignWrong {
					t.Fatalf("foreign producer's batch: base %d err %v", b, err)
				}
				s.wantNewBase += 3
			}
			b, err := e.Append(t.Context(), "t", idemBatch(t, s.pid, s.newSeq, uint64(s.newSeq)))
			if err != nil || b != s.wantNewBase {
				t.Fatalf("next sequence %d: base %d err %v, want a new append at %d", s.newSeq, b, err, s.wantNewBase)
			}
		})
	}
}
