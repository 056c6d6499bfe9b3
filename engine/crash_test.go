package engine

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// ack is one acknowledged append: where it landed and what it held.
type ack struct {
	off  uint64
	msgs [][]byte
}

// ackLog collects acknowledged appends from many goroutines; acked is
// signalled once per ack so a test can act after the n-th one.
type ackLog struct {
	mu    sync.Mutex
	acks  []ack
	acked chan struct{}
}

func newAckLog(capacity int) *ackLog { return &ackLog{acked: make(chan struct{}, capacity)} }

func (l *ackLog) add(off uint64, msgs [][]byte) {
	l.mu.Lock()
	l.acks = append(l.acks, ack{off, msgs})
	l.mu.Unlock()
	l.acked <- struct{}{}
}

func (l *ackLog) snapshot() []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ack(nil), l.acks...)
}

// checkAcks checks that every ack in acks is present in e with its exact
// content, and that everything e holds reads back as whole, dense batches.
func checkAcks(t *testing.T, e *Engine, topic string, acks []ack) {
	t.Helper()
	end := endOf(t, e, topic)
	got := readAll(t, e, topic, 0, end) // whole, valid, dense batches
	for _, a := range acks {
		if a.off+uint64(len(a.msgs)) > end {
			t.Fatalf("acknowledged batch at %d (%d messages) lost: the topic ends at %d", a.off, len(a.msgs), end)
		}
		for i, msg := range a.msgs {
			if g := got[a.off+uint64(i)]; !bytes.Equal(g.data, msg) {
				t.Fatalf("acknowledged message %d differs after the crash", g.off)
			}
		}
	}
}

// Promise (fsync=always): with concurrent appenders (queued and direct)
// and segment rolls, a power loss at any moment (only synced bytes survive)
// loses no acknowledged batch: each is present, at its offset, with its
// content, and the log holds only whole, dense batches.
func TestCrashFsyncAlwaysKeepsAcked(t *testing.T) {
	const appenders, perAppender = 8, 60
	rng := newRand(t)
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentBytes = 32 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	acks := newAckLog(appenders * perAppender)
	var wg sync.WaitGroup
	for a := range appenders {
		msgs := make([][][]byte, perAppender)
		batches := make([][]byte, perAppender)
		for i := range msgs {
			n := 1 + rng.IntN(30)
			msgs[i] = genMsgs(uint64(a)<<32|uint64(i)<<16, n, 10+n*7)
			batches[i] = batchOf(t, msgs[i]...)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, b := range batches {
				// Odd appenders write directly when the writer is idle
				// (EnqueueDirect): their acks are as durable.
				var off uint64
				var err error
				if a%2 == 1 {
					var p Pending
					if p, err = e.EnqueueDirect(context.Background(), "t", b); err == nil {
						off, err = p.Wait()
					}
				} else {
					off, err = e.Append(context.Background(), "t", b)
				}
				if err != nil {
					t.Errorf("appender %d: %v", a, err)
					return
				}
				acks.add(off, msgs[i])
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Crash at several points while the appenders run: everything acked
	// before the crash image is taken must be in it.
	type image struct {
		fs   *vfs.MemFS
		acks []ack
	}
	var images []image
	for n := 1; n <= appenders*perAppender; n++ {
		select {
		case <-acks.acked:
		case <-done:
			select {
			case <-acks.acked:
			default:
				t.Fatal("appenders stopped early")
			}
		}
		if n%97 == 0 || n == 5 {
			before := acks.snapshot()
			images = append(images, image{fs.Crash(), before})
		}
	}
	<-done
	images = append(images, image{fs.Crash(), acks.snapshot()})
	for i, img := range images {
		o := opts
		o.FS = img.fs
		e := openEngine(t, o)
		checkAcks(t, e, "t", img.acks)
		t.Logf("image %d: %d acked before the crash, %d messages recovered", i, len(img.acks), endOf(t, e, "t"))
		// The recovered topic takes appends at its end.
		end := endOf(t, e, "t")
		if off := mustAppend(t, e, "t", batchOf(t, msgBytes(1, 1))); off != end {
			t.Fatalf("append after recovery at %d, want %d", off, end)
		}
		e.Close()
	}
}

// Promise (fsync=never): a power loss may lose acknowledged
// batches that were not yet synced, but recovery never yields a partial
// batch, a gap or wrong content: what survives is a prefix of what was
// acknowledged, and sealed segments (synced when sealed) always survive.
func TestCrashFsyncNeverLosesOnlyATail(t *testing.T) {
	rng := newRand(t)
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.Fsync = FsyncNever
	opts.SegmentBytes = 16 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	tp, _ := e.topic("t")
	m := newModel()
	lost := 0
	for i := range 300 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)<<16, 1+rng.IntN(10), rng.IntN(200)))
		if rng.IntN(10) != 0 {
			continue
		}
		segs := tp.segments()
		sealedEnd := segs[len(segs)-1].Base() // every segment before the active one is sealed
		o := opts
		o.FS = fs.Crash()
		c := openEngine(t, o)
		end := endOf(t, c, "t")
		if end < sealedEnd || end > m.next {
			t.Fatalf("after %d appends: recovered end %d, want within [%d, %d]", i+1, end, sealedEnd, m.next)
		}
		(&model{msgs: m.msgs, next: end}).check(t, c, "t", 0)
		lost += int(m.next - end)
		c.Close()
	}
	t.Logf("crash images lost %d acknowledged-but-unsynced messages in all", lost)
	if lost == 0 {
		t.Fatal("fsync=never never lost anything: the crash model is not being exercised")
	}
}
