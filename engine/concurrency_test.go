package engine

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// follow reads topic from offset 0 until it has seen total messages,
// waiting for data with Wait, as a consumer would. It checks what a
// consumer relies on: a Read below the end returns at least one chunk,
// chunks are valid batches with dense offsets, and the result's bytes
// match its chunks. It returns the messages by offset.
func follow(ctx context.Context, e *Engine, topic string, total uint64, maxBytes int64) ([][]byte, error) {
	var res ReadResult
	defer res.Release()
	out := make([][]byte, 0, total)
	for reads := 0; uint64(len(out)) < total; reads++ {
		if reads > 10*int(total)+100 {
			return out, fmt.Errorf("no progress at offset %d", len(out))
		}
		off := uint64(len(out))
		if err := e.Wait(ctx, topic, off); err != nil {
			return out, fmt.Errorf("Wait(%d): %w", off, err)
		}
		if err := e.Read(topic, off, total-off, maxBytes, &res); err != nil {
			return out, fmt.Errorf("Read(%d): %w", off, err)
		}
		if len(res.Chunks) == 0 {
			return out, fmt.Errorf("Read(%d) returned no chunks below the end %d", off, res.End)
		}
		var n int64
		for _, c := range res.Chunks {
			n += c.Range.Len()
			sc := record.NewScanner(c.Data())
			next := c.Range.First
			for sc.Next() {
				h := sc.Header()
				if h.BaseOffset != next {
					return out, fmt.Errorf("batch at %d, want %d", h.BaseOffset, next)
				}
				it := record.Messages(sc.Batch(), h)
				o := h.BaseOffset
				for msg, ok := it.Next(); ok; msg, ok = it.Next() {
					if o == uint64(len(out)) {
						out = append(out, bytes.Clone(msg))
					} else if o > uint64(len(out)) {
						return out, fmt.Errorf("gap: message %d after %d", o, len(out))
					}
					o++
				}
				if it.Err() != nil {
					return out, it.Err()
				}
				next = h.NextOffset()
			}
			if sc.Err() != nil || next != c.Range.Next {
				return out, fmt.Errorf("chunk %+v: ends at %d: %v", c.Range, next, sc.Err())
			}
		}
		if n != res.Bytes {
			return out, fmt.Errorf("chunks hold %d bytes, result says %d", n, res.Bytes)
		}
	}
	return out, nil
}

// Promise (concurrency, run under -race): 8 appenders and 4 readers that
// follow the topic with Wait + Read, across segment rolls: every reader
// sees every acknowledged message at its offset, dense, in valid batches,
// and never an empty read below the end.
func TestConcurrentAppendersAndReaders(t *testing.T) {
	const appenders, perAppender, readers = 8, 40, 4
	rng := newRand(t)
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentBytes = 32 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type work struct {
		msgs    [][][]byte
		batches [][]byte
	}
	var total uint64
	jobs := make([]work, appenders)
	for a := range jobs {
		for i := range perAppender {
			n := 1 + rng.IntN(20)
			msgs := genMsgs(uint64(a)<<32|uint64(i)<<16, n, rng.IntN(200))
			jobs[a].msgs = append(jobs[a].msgs, msgs)
			jobs[a].batches = append(jobs[a].batches, batchOf(t, msgs...))
			total += uint64(n)
		}
	}
	got := make([][][]byte, readers)
	var wg sync.WaitGroup
	for r := range readers {
		maxBytes := []int64{1, 4 << 10, 64 << 10, 1 << 20}[r]
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs, err := follow(ctx, e, "t", total, maxBytes)
			if err != nil {
				t.Errorf("reader %d (budget %d): %v", r, maxBytes, err)
			}
			got[r] = msgs
		}()
	}
	acks := newAckLog(appenders * perAppender)
	for a := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, b := range jobs[a].batches {
				off, err := e.Append(ctx, "t", b)
				if err != nil {
					t.Errorf("appender %d: %v", a, err)
					cancel()
					return
				}
				acks.add(off, jobs[a].msgs[i])
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, a := range acks.snapshot() {
		for i, msg := range a.msgs {
			for r := range got {
				if !bytes.Equal(got[r][a.off+uint64(i)], msg) {
					t.Fatalf("reader %d: offset %d differs from what was acknowledged there", r, a.off+uint64(i))
				}
			}
		}
	}
	if info := describe(t, e, "t"); info.End != total || info.Segments < 3 {
		t.Fatalf("%+v: want end %d over several segments", info, total)
	}
}

// syncCounter counts fsyncs of log files; block, when set, holds the
// first one until gate is closed.
type syncCounter struct {
	n       atomic.Int64
	latency time.Duration // how long a sync takes, like a disk's
	block   bool
	entered chan struct{}
	gate    chan struct{}
}

func (c *syncCounter) fault(op vfs.Op, name string) error {
	if op != vfs.OpSync || !strings.HasSuffix(name, ".log") {
		return nil
	}
	if c.n.Add(1) == 1 && c.block {
		close(c.entered)
		<-c.gate
	}
	time.Sleep(c.latency)
	return nil
}

// Promise (group commit): appends that queue while the writer syncs share
// the next write and fsync. The first sync is held until 7 more appends
// are queued; the 8 appends then cost exactly 2 fsyncs.
func TestGroupCommitSharesSyncs(t *testing.T) {
	fs := vfs.NewMemFS()
	sc := &syncCounter{block: true, entered: make(chan struct{}), gate: make(chan struct{})}
	fs.SetFault(sc.fault)
	e := openEngine(t, memOpts(fs))
	mustCreate(t, e, "t")
	tp, _ := e.topic("t")
	offs := make(chan uint64, 8)
	var wg sync.WaitGroup
	appendOne := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off, err := e.Append(context.Background(), "t", batchOf(t, genMsgs(uint64(i), 2, 10)...))
			if err != nil {
				t.Error(err)
			}
			offs <- off
		}()
	}
	appendOne(0)
	<-sc.entered // the writer is inside the first fsync
	for i := 1; i < 8; i++ {
		appendOne(i)
	}
	spinUntil(t, "7 queued appends", func() bool { return len(tp.reqs) == 7 })
	close(sc.gate)
	wg.Wait()
	close(offs)
	seen := map[uint64]bool{}
	for off := range offs {
		seen[off] = true
	}
	for off := uint64(0); off < 16; off += 2 {
		if !seen[off] {
			t.Fatalf("offsets %v: want every even offset below 16", seen)
		}
	}
	if n := sc.n.Load(); n != 2 {
		t.Fatalf("%d fsyncs for 8 appends, want 2 (one for the first, one shared by the group)", n)
	}
}

// Promise (group commit, free running): 8 concurrent appenders with
// fsync=always need fewer fsyncs than appends.
func TestGroupCommitFewerSyncsThanAppends(t *testing.T) {
	const appenders, perAppender = 8, 100
	fs := vfs.NewMemFS()
	// An in-memory sync is instant; give it a disk's latency (about what
	// one fdatasync takes here) so that appenders queue up behind it.
	sc := &syncCounter{latency: 200 * time.Microsecond}
	fs.SetFault(sc.fault)
	e := openEngine(t, memOpts(fs))
	mustCreate(t, e, "t")
	b := batchOf(t, genMsgs(0, 10, 100)...)
	var wg sync.WaitGroup
	for range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := bytes.Clone(b) // Append stamps the batch in place
			for range perAppender {
				if _, err := e.Append(context.Background(), "t", mine); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	n := sc.n.Load()
	t.Logf("%d appends, %d fsyncs", appenders*perAppender, n)
	if n >= appenders*perAppender {
		t.Fatalf("%d fsyncs for %d appends: group commit shared none", n, appenders*perAppender)
	}
	if end := endOf(t, e, "t"); end != appenders*perAppender*10 {
		t.Fatalf("end %d", end)
	}
}

// Promise (Read contract): a Read below the end always returns data, even
// while the writer rolls a segment between the reader's loads of the
// segment list and of the end. Every batch here rolls a segment, and the
// reader polls at its next offset; an empty read below the end would make
// a consumer spin or stall.
func TestReadNeverEmptyBelowEnd(t *testing.T) {
	const n = 400
	opts := memOpts(vfs.NewMemFS())
	opts.SegmentEntries = 1 // every append rolls
	opts.SegmentBytes = 4 << 10
	opts.Fsync = FsyncNever
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	done := make(chan error, 1)
	go func() {
		b := batchOf(t, []byte("x"))
		for range n {
			if _, err := e.Append(context.Background(), "t", b); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var res ReadResult
	defer res.Release()
	// The reader keeps up with the writer however slow the machine is:
	// it is stuck only if a read returns nothing once every append is
	// acknowledged (no wall-clock deadline).
	empties, appended := 0, false
	for off := uint64(0); off < n; {
		if !appended {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				appended = true
			default:
			}
		}
		if err := e.Read("t", off, 10, 1<<20, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Chunks) == 0 && off < res.End {
			empties++
		}
		if len(res.Chunks) > 0 {
			off = res.Next()
		} else if appended {
			t.Fatalf("reader stuck at %d (end %d) after all %d appends were acknowledged; %d empty reads below the end", off, res.End, n, empties)
		} else {
			runtime.Gosched() // at the end: let the writer run
		}
	}
	if !appended {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if empties > 0 {
		t.Fatalf("%d reads below the end returned no chunks", empties)
	}
}
