package engine

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// Promise (under load): with concurrent
// appenders and readers, while the read volume fails now and then (fenced at its
// first error), is rebuilt by health checks and rejoins, and the scrubber
// runs, every append is either acknowledged and readable at its offset or
// failed and invisible; reads always see whole, dense batches; after a
// power loss every acknowledged batch is there; at the end the volumes
// hold identical files.
func TestMirrorFaultsUnderLoad(t *testing.T) {
	const appenders, perAppender = 4, 60
	rnd := newRand(t)
	fs := vfs.NewMemFS()
	var failing atomic.Bool
	fs.SetFault(func(op vfs.Op, name string) error {
		if failing.Load() && (op == vfs.OpWrite || op == vfs.OpSync) && strings.HasPrefix(name, "/v3/") {
			return syscall.EIO
		}
		return nil
	})
	opts := mirrorOpts(fs, vols3...)
	opts.SegmentEntries = 16
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	acks := newAckLog(appenders * perAppender)
	var wg, readers sync.WaitGroup
	done := make(chan struct{})
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perAppender {
				msgs := genMsgs(uint64(a)<<32|uint64(i)<<16, 1+i%5, 80)
				off, err := e.Append(context.Background(), "t", batchOf(t, msgs...))
				if err != nil {
					t.Errorf("appender %d: %v (one volume failing must not fail appends)", a, err)
					return
				}
				acks.add(off, msgs)
			}
		}()
	}
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var res ReadResult
			defer res.Release()
			for {
				select {
				case <-done:
					return
				default:
				}
				start, end, err := e.Offsets("t")
				if err != nil {
					t.Error(err)
					return
				}
				for off := start; off < end; {
					err := e.Read("t", off, end-off, 16<<10, &res)
					if errors.Is(err, ErrOutOfRange) {
						break // truncated meanwhile
					}
					if err != nil {
						t.Errorf("read at %d: %v", off, err)
						return
					}
					next := off
					for _, c := range res.Chunks {
						if _, err := chunkMsgs(nil, c, &next, end); err != nil {
							t.Errorf("read at %d: %v", off, err)
							return
						}
					}
					off = next
					res.Release()
				}
			}
		}()
	}
	// Chaos: the volume fails and recovers; health checks and scrubs run.
	fencedSteps := 0
	for step := 0; len(acks.acked) < appenders*perAppender*3/4 && step < 200; step++ {
		<-acks.acked
		switch rnd.IntN(4) {
		case 0:
			failing.Store(true)
		case 1:
			failing.Store(false)
			e.CheckVolumes()
		case 2:
			e.Scrub(0)
		case 3:
			if rnd.IntN(4) == 0 { // now and then the front goes, racing repairs
				if _, err := e.TruncateBefore(context.Background(), "t", endOf(t, e, "t")/3); err != nil {
					t.Fatal(err)
				}
			}
		}
		if volState(t, e, "/v3").State == VolumeFenced {
			fencedSteps++
		}
	}
	wg.Wait()
	close(done)
	readers.Wait()
	failing.Store(false)
	e.CheckVolumes()
	wantStates(t, e, VolumeHealthy, VolumeHealthy, VolumeHealthy)
	start, _, err := e.Offsets("t")
	if err != nil {
		t.Fatal(err)
	}
	var all []ack // what truncation kept
	for _, a := range acks.snapshot() {
		if a.off >= start {
			all = append(all, a)
		}
	}
	checkAcksFrom(t, e, "t", start, all)
	if bad := e.Scrub(0); bad != 0 {
		t.Fatalf("scrub found %d bad copies", bad)
	}
	// Quiesce the writer before comparing files.
	writerBarrier(t, e, "t")
	sameFiles(t, fs, "t", vols3...)
	c, _ := crashOpen(t, fs, opts)
	checkAcksFrom(t, c, "t", start, all)
	st := e.Stats()
	t.Logf("%d acks kept from offset %d, v3 fenced at %d chaos steps, stats %+v", len(all), start, fencedSteps, st)
}

// checkAcksFrom is checkAcks for a topic that starts at start: every ack
// given is present with its content, and [start, end) reads back whole.
func checkAcksFrom(t *testing.T, e *Engine, topic string, start uint64, acks []ack) {
	t.Helper()
	end := endOf(t, e, topic)
	got := readAll(t, e, topic, start, end)
	for _, a := range acks {
		if a.off+uint64(len(a.msgs)) > end {
			t.Fatalf("acknowledged batch at %d (%d messages) lost: the topic ends at %d", a.off, len(a.msgs), end)
		}
		for i, msg := range a.msgs {
			if g := got[a.off-start+uint64(i)]; !bytes.Equal(g.data, msg) {
				t.Fatalf("acknowledged message %d differs", g.off)
			}
		}
	}
}
