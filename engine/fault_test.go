package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// failOn returns a MemFS fault that fails op on files whose name ends with
// suffix while on is set.
func failOn(on *atomic.Bool, op vfs.Op, suffix string, err error) func(vfs.Op, string) error {
	return func(o vfs.Op, name string) error {
		if on.Load() && o == op && strings.HasSuffix(name, suffix) {
			return err
		}
		return nil
	}
}

// logSize returns the length of the topic's active log file.
func logSize(t *testing.T, fs *vfs.MemFS, e *Engine, topic string) int {
	t.Helper()
	b, err := fs.ReadFile(activeLog(t, e, topic))
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// Promise: when the log's write or fsync fails, Append
// returns ErrStorage, nothing of the batch is acknowledged or readable, the
// log is cut back to its committed bytes (no partial batch, not even after
// a crash), and once the fault clears the topic continues with dense
// offsets.
func TestWriteOrSyncFailureNotAcknowledged(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpSync, vfs.OpWrite} {
		t.Run(string(op), func(t *testing.T) {
			fs := vfs.NewMemFS()
			var on atomic.Bool
			fs.SetFault(failOn(&on, op, ".log", syscall.EIO))
			opts := noZeros(memOpts(fs)) // the test sizes the log file
			e := openEngine(t, opts)
			mustCreate(t, e, "t")
			m := newModel()
			for i := range 5 {
				m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 10, 100))
			}
			size := logSize(t, fs, e, "t")
			on.Store(true)
			for range 3 {
				_, err := e.Append(context.Background(), "t", batchOf(t, genMsgs(1e6, 10, 100)...))
				if !errors.Is(err, ErrStorage) || !errors.Is(err, syscall.EIO) {
					t.Fatalf("Append under a %s fault = %v, want ErrStorage wrapping EIO", op, err)
				}
			}
			if end := endOf(t, e, "t"); end != m.next {
				t.Fatalf("end moved to %d under a %s fault, want %d", end, op, m.next)
			}
			if got := logSize(t, fs, e, "t"); got != size {
				t.Fatalf("log is %d bytes after the failed appends, want %d: a partial batch stayed", got, size)
			}
			m.check(t, e, "t", 0)
			var res ReadResult
			if err := e.Read("t", m.next, 1, 1<<20, &res); err != nil || len(res.Chunks) != 0 {
				t.Fatalf("read at the end: %v, %d chunks", err, len(res.Chunks))
			}
			// What a power loss now would keep: the acknowledged batches only.
			c, _ := crashOpen(t, fs, opts)
			m.check(t, c, "t", 0)
			if end := endOf(t, c, "t"); end != m.next {
				t.Fatalf("crash image ends at %d, want %d", end, m.next)
			}

			on.Store(false)
			for i := range 5 {
				m.appendBatch(t, e, "t", genMsgs(2e6+uint64(i)*10, 10, 100))
			}
			if info := describe(t, e, "t"); info.ReadOnly != nil {
				t.Fatalf("topic read-only after a cleared fault: %v", info.ReadOnly)
			}
			m.check(t, e, "t", 0)
			e = reopen(t, e, opts)
			m.check(t, e, "t", 0)
		})
	}
}

// Promise: a full disk fails the append with a clear
// ErrStorage (ENOSPC), leaves no partial batch, lets smaller appends that
// fit through, and the topic resumes when space frees.
func TestDiskFull(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := noZeros(memOpts(fs)) // the disk is sized to the files
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 3 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 10, 100))
	}
	// Room for one more 1 KiB-ish batch and its index entry, not for 10 KiB.
	used := int64(0)
	for _, n := range []string{activeLog(t, e, "t"), strings.TrimSuffix(activeLog(t, e, "t"), ".log") + ".idx"} {
		b, _ := fs.ReadFile(n)
		used += int64(len(b))
	}
	fs.SetCapacity(used + 2000)
	size := logSize(t, fs, e, "t")
	_, err := e.Append(context.Background(), "t", batchOf(t, genMsgs(1e6, 10, 1000)...))
	if !errors.Is(err, ErrStorage) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk = %v, want ErrStorage wrapping ENOSPC", err)
	}
	if got := logSize(t, fs, e, "t"); got != size {
		t.Fatalf("log is %d bytes after ENOSPC, want %d: a partial batch stayed", got, size)
	}
	m.check(t, e, "t", 0)
	m.appendBatch(t, e, "t", genMsgs(2e6, 3, 100)) // a small one fits
	_, err = e.Append(context.Background(), "t", batchOf(t, genMsgs(1e6, 10, 1000)...))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second big append = %v, want ENOSPC", err)
	}
	fs.SetCapacity(0)
	m.appendBatch(t, e, "t", genMsgs(1e6, 10, 1000))
	m.check(t, e, "t", 0)
	c, _ := crashOpen(t, fs, opts)
	m.check(t, c, "t", 0)
}

// Promise: a roll that cannot create the next segment
// (ENOSPC on create) or cannot write the seal of the full one fails the
// append with ErrStorage and acknowledges nothing; a later append retries
// the roll and succeeds at the right offset.
func TestRollFailureRetried(t *testing.T) {
	cases := []struct {
		name  string
		fault func(fs *vfs.MemFS, on *atomic.Bool)
	}{
		{"create next segment", func(fs *vfs.MemFS, on *atomic.Bool) {
			fs.SetFault(failOn(on, vfs.OpCreate, ".log", syscall.ENOSPC))
		}},
		{"create next index", func(fs *vfs.MemFS, on *atomic.Bool) {
			fs.SetFault(failOn(on, vfs.OpCreate, ".idx", syscall.ENOSPC))
		}},
		{"write seal", func(fs *vfs.MemFS, on *atomic.Bool) {
			fs.SetFault(failOn(on, vfs.OpWrite, ".seal.tmp", syscall.ENOSPC))
		}},
		{"sync dir", func(fs *vfs.MemFS, on *atomic.Bool) {
			fs.SetFault(failOn(on, vfs.OpSyncDir, "t", syscall.EIO))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMemFS()
			var on atomic.Bool
			tc.fault(fs, &on)
			opts := memOpts(fs)
			opts.SegmentBytes = 8 << 10
			e := openEngine(t, opts)
			mustCreate(t, e, "t")
			m := newModel()
			big := genMsgs(0, 10, 300) // ~3 KiB: the third one rolls
			m.appendBatch(t, e, "t", big)
			m.appendBatch(t, e, "t", big)
			on.Store(true)
			for range 3 {
				_, err := e.Append(context.Background(), "t", batchOf(t, big...))
				if !errors.Is(err, ErrStorage) {
					t.Fatalf("append needing a failing roll = %v, want ErrStorage", err)
				}
			}
			if end := endOf(t, e, "t"); end != m.next {
				t.Fatalf("end %d after failed rolls, want %d", end, m.next)
			}
			m.check(t, e, "t", 0)
			on.Store(false)
			m.appendBatch(t, e, "t", big)
			if n := describe(t, e, "t").Segments; n != 2 {
				t.Fatalf("%d segments after the retried roll, want 2", n)
			}
			for range 5 {
				m.appendBatch(t, e, "t", big)
			}
			m.check(t, e, "t", 0)
			e = reopen(t, e, opts)
			m.check(t, e, "t", 0)
			c, _ := crashOpen(t, fs, opts)
			m.check(t, c, "t", 0)
		})
	}
}

// Promise (group commit): when syncs fail now and then under
// concurrent appenders, every append either is acknowledged and readable
// at its offset, or fails with ErrStorage and is invisible; offsets stay
// dense, and a crash keeps every acknowledged batch.
func TestIntermittentSyncFailures(t *testing.T) {
	const appenders, perAppender = 4, 50
	fs := vfs.NewMemFS()
	var syncs atomic.Int64
	fs.SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && syncs.Add(1)%5 == 0 {
			return syscall.EIO
		}
		return nil
	})
	opts := memOpts(fs)
	opts.SegmentBytes = 32 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	acks := newAckLog(appenders * perAppender)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for a := range appenders {
		batches := make([][]byte, perAppender)
		msgs := make([][][]byte, perAppender)
		for i := range batches {
			msgs[i] = genMsgs(uint64(a)<<32|uint64(i)<<16, 1+i%7, 100)
			batches[i] = batchOf(t, msgs[i]...)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, b := range batches {
				off, err := e.Append(context.Background(), "t", b)
				switch {
				case err == nil:
					acks.add(off, msgs[i])
				case errors.Is(err, ErrStorage):
					failed.Add(1)
				default:
					t.Errorf("appender %d: %v", a, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() == 0 {
		t.Fatal("no append failed: the fault was not exercised")
	}
	all := acks.snapshot()
	var total uint64
	for _, a := range all {
		total += uint64(len(a.msgs))
	}
	if end := endOf(t, e, "t"); end != total {
		t.Fatalf("end %d, but %d messages were acknowledged: offsets not dense", end, total)
	}
	checkAcks(t, e, "t", all)
	fs.SetFault(nil)
	c, _ := crashOpen(t, fs, opts)
	checkAcks(t, c, "t", all)
	t.Logf("%d appends acknowledged, %d failed, %d syncs", len(all), failed.Load(), syncs.Load())
}

// Promise: with fsync=interval an append is
// acknowledged before its sync; a sync that then fails at shutdown is
// reported by Close, the topic turns read-only, and no clean-shutdown
// marker is written, so the next open scans instead of trusting.
func TestCloseReportsFailedIntervalSync(t *testing.T) {
	fs := vfs.NewMemFS()
	var on atomic.Bool
	fs.SetFault(failOn(&on, vfs.OpSync, ".log", syscall.EIO))
	opts := memOpts(fs)
	opts.Fsync = FsyncInterval
	opts.FsyncInterval = 1 << 62 // only the shutdown syncs
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	m.appendBatch(t, e, "t", genMsgs(0, 5, 50))
	on.Store(true)
	if err := e.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close = %v, want the sync error", err)
	}
	tp := e.topics["t"]
	if err := tp.readOnlyErr(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("after a failed interval sync the topic is not read-only: %v", err)
	}
	if _, err := fs.ReadFile(memDir + "/" + cleanName); err == nil {
		t.Fatal("a clean-shutdown marker was written after a failed sync")
	}
}

// TestRollAfterFailedSegmentCreate checks that a topic keeps taking
// writes after a roll failed to create its next segment (the mapping was
// refused: out of memory or of map slots): the failed append is not
// acknowledged, and once the fault clears the next append rolls and
// succeeds with dense offsets.
func TestRollAfterFailedSegmentCreate(t *testing.T) {
	fs := vfs.NewMemFS()
	var on atomic.Bool
	fs.SetFault(failOn(&on, vfs.OpMap, segment.LogName(4), syscall.ENOMEM))
	opts := memOpts(fs)
	opts.SegmentEntries = 4
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 4 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i), 1, 50))
	}
	on.Store(true)
	if _, err := e.Append(context.Background(), "t", batchOf(t, genMsgs(99, 1, 50)...)); !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("Append whose roll cannot map the new segment = %v, want an error wrapping ENOMEM", err)
	}
	on.Store(false)
	for i := range 6 {
		m.appendBatch(t, e, "t", genMsgs(uint64(10+i), 1, 50))
	}
	m.check(t, e, "t", 0)
	if got := describe(t, e, "t").Segments; got != 3 {
		t.Fatalf("%d segments after 10 batches of 4 per segment, want 3", got)
	}
}
