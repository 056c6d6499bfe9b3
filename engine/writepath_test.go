package engine

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// failOnVol returns a MemFS fault that fails op on files under volume vol
// whose name ends with suffix while on is set.
func failOnVol(on *atomic.Bool, vol string, op vfs.Op, suffix string, err error) func(vfs.Op, string) error {
	return func(o vfs.Op, name string) error {
		if on.Load() && o == op && strings.HasPrefix(name, vol+"/") && strings.HasSuffix(name, suffix) {
			return err
		}
		return nil
	}
}

// Promise: an append the client was told failed is never stored after a
// crash (no duplicate when a non-idempotent client retries it). With two
// volumes and MinVolumes 2, the batch is written and synced on one volume
// while the other's sync fails; the rollback on the good volume must be
// durable, so a crash right after it recovers neither copy of the batch.
func TestRolledBackAppendGoneAfterCrash(t *testing.T) {
	fs := vfs.NewMemFS()
	var on atomic.Bool
	fs.SetFault(failOnVol(&on, "/v2", vfs.OpSync, ".log", syscall.EIO))
	opts := mirrorOpts(fs, "/v1", "/v2")
	opts.MinVolumes = 2
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 3 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*5, 5, 60))
	}
	on.Store(true)
	if _, err := e.Append(t.Context(), "t", batchOf(t, genMsgs(100, 4, 60)...)); !errors.Is(err, ErrStorage) {
		t.Fatalf("Append with a failing sync on one of two required volumes = %v, want ErrStorage", err)
	}
	on.Store(false)
	c, _ := crashOpen(t, fs, opts)
	if end := endOf(t, c, "t"); end != m.next {
		t.Fatalf("after a crash the topic ends at %d, want %d: the failed append came back", end, m.next)
	}
	m.check(t, c, "t", 0)
}

// Promise: with fsync=interval or never, a failed fsync is never retried
// as if it had succeeded (the kernel may have dropped the dirty pages of
// acknowledged appends). When the seal of a full segment is the first sync
// of acknowledged data and it fails on the only volume, the topic turns
// read-only, as after a failed interval sync; a later append, roll or
// shutdown never seals the segment (a sealed segment is trusted at open
// without a scan), and no clean-shutdown marker is written.
func TestFailedSealSyncNotRetried(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncInterval, FsyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			fs := vfs.NewMemFS()
			var on atomic.Bool
			fs.SetFault(failOn(&on, vfs.OpSync, ".log", syscall.EIO))
			opts := memOpts(fs)
			opts.SegmentBytes = 8 << 10
			opts.Fsync = policy
			opts.FsyncInterval = 1 << 62 // only the seal syncs
			e := openEngine(t, opts)
			mustCreate(t, e, "t")
			m := newModel()
			big := genMsgs(0, 10, 300) // ~3 KiB: the third append rolls
			m.appendBatch(t, e, "t", big)
			m.appendBatch(t, e, "t", big)
			log := activeLog(t, e, "t")
			on.Store(true)
			if _, err := e.Append(t.Context(), "t", batchOf(t, big...)); err == nil {
				t.Fatal("an append whose roll failed to sync the full segment succeeded")
			}
			on.Store(false)
			for range 2 {
				_, err := e.Append(t.Context(), "t", batchOf(t, big...))
				if !errors.Is(err, ErrReadOnly) {
					t.Fatalf("append after the failed seal sync = %v, want ErrReadOnly", err)
				}
			}
			// Truncating to the end rolls the active segment first.
			if _, err := e.TruncateBefore(t.Context(), "t", m.next); err == nil {
				t.Fatal("a truncation sealed the segment whose sync failed")
			}
			if _, err := fs.ReadFile(strings.TrimSuffix(log, ".log") + ".seal"); err == nil {
				t.Fatal("the segment whose sync failed was sealed")
			}
			m.check(t, e, "t", 0)
			if err := e.Close(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Close = %v, want the sticky sync error", err)
			}
			if _, err := fs.ReadFile(memDir + "/" + cleanName); err == nil {
				t.Fatal("a clean-shutdown marker was written after a failed sync")
			}
		})
	}
}

// Promise: a crash never turns a topic read-only over data nobody was told
// was stored. A power cut during one multi-page group write left a hole
// (zeros) at the start of the write while later pages made it: past the
// synced-offset checkpoint that is a torn tail, cut, counted and logged,
// and the topic stays writable at the right offset. Below the checkpoint
// the same hole is corruption (the topic is read-only, nothing is cut).
func TestTornHoleAfterCheckpoint(t *testing.T) {
	for _, below := range []bool{false, true} {
		fs := vfs.NewMemFS()
		opts := noZeros(memOpts(fs)) // the test zeroes the log's last bytes
		e := openEngine(t, opts)
		mustCreate(t, e, "t")
		m := newModel()
		for i := range 4 {
			m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 10, 100))
		}
		if !below {
			if err := e.WriteCheckpoint(); err != nil {
				t.Fatal(err)
			}
		}
		// Under fsync=always each write is synced before the next: the
		// three batches the power loss cuts must go out in ONE group
		// write. Hold the writer in the sync of the fifth batch while
		// they queue.
		var armed atomic.Bool
		armed.Store(true)
		blocked, release := make(chan struct{}), make(chan struct{})
		fs.SetFault(func(op vfs.Op, name string) error {
			if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
				close(blocked)
				<-release
			}
			return nil
		})
		fifth := genMsgs(40, 10, 100)
		type result struct {
			off uint64
			err error
		}
		res5 := make(chan result, 1)
		go func() {
			off, err := e.Append(context.Background(), "t", batchOf(t, fifth...))
			res5 <- result{off, err}
		}()
		select {
		case <-blocked:
		case <-time.After(30 * time.Second):
			t.Fatal("the fifth batch's sync never started")
		}
		holeAt := logSize(t, fs, e, "t")
		errs := make(chan error, 3)
		for i := range 3 {
			b := batchOf(t, genMsgs(100+uint64(i)*10, 10, 100)...)
			go func() {
				_, err := e.Append(context.Background(), "t", b)
				errs <- err
			}()
		}
		tp := e.mustTopic(t, "t")
		for deadline := time.Now().Add(30 * time.Second); len(tp.reqs) < 3; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				close(release)
				t.Fatalf("%d of 3 appends queued", len(tp.reqs))
			}
		}
		close(release)
		r := <-res5
		if r.err != nil || r.off != m.next {
			t.Fatalf("fifth append: offset %d, %v; want %d", r.off, r.err, m.next)
		}
		for i, msg := range fifth {
			m.msgs[r.off+uint64(i)] = msg
		}
		m.next = r.off + uint64(len(fifth))
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		fs.SetFault(nil)
		synced := m.next
		if below {
			if err := e.WriteCheckpoint(); err != nil {
				t.Fatal(err)
			}
		}
		log := activeLog(t, e, "t")
		end := logSize(t, fs, e, "t")
		img := fs.Crash()
		if err := img.Corrupt(log, func(b []byte) []byte { clear(b[holeAt : holeAt+512]); return b }); err != nil {
			t.Fatal(err)
		}
		rec := &logRecorder{}
		o := opts
		o.FS, o.Logger = img, rec.logger()
		c := openEngine(t, o)
		info := describe(t, c, "t")
		if below {
			if info.ReadOnly == nil || !errors.Is(info.ReadOnly, ErrCorrupt) {
				t.Fatalf("hole below the checkpoint: %+v, want read-only with ErrCorrupt", info)
			}
			if b, _ := img.ReadFile(log); len(b) != end {
				t.Fatalf("hole below the checkpoint: log cut to %d bytes, want %d", len(b), end)
			}
			continue
		}
		if info.ReadOnly != nil || info.End != synced {
			t.Fatalf("hole past the checkpoint: %+v, want writable, end %d", info, synced)
		}
		if got, want := c.Stats().TornBytes, int64(end-holeAt); got != want {
			t.Fatalf("TornBytes %d, want %d", got, want)
		}
		if rec.count("cut torn tail") != 1 {
			t.Fatal("the torn-tail cut was not logged")
		}
		m.check(t, c, "t", 0)
		m.appendBatch(t, c, "t", genMsgs(999, 3, 10))
		m.check(t, c, "t", 0)
	}
}
