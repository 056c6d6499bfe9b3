package engine

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/haraqa/haraqa/vfs"
)

// Promise (Read contract): Read returns nothing at or past the end it
// reports. The writer commits a batch to its segment just before it
// publishes the new end; a reader that loaded the end before that publish
// (simulated here by calling readSegments with the older end) must stop at
// it, or its next Read at res.Next() would be "above the end".
func TestReadStopsAtLoadedEnd(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 3 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 10, 10))
	}
	tp, _ := e.topic("t")
	var res ReadResult
	defer res.Release()
	res.Start, res.End = 0, 20 // loaded before the third batch was published
	if err := e.readSegments(tp, tp.segments(), 0, 100, 1<<20, &res); err != nil {
		t.Fatal(err)
	}
	if res.Next() != 20 {
		t.Fatalf("read up to %d with the end loaded at 20", res.Next())
	}
}

// readMsgs collects what concurrent readers saw, by offset, and checks that
// two readers never saw different bytes at one offset.
type readMsgs struct {
	mu   sync.Mutex
	seen map[uint64][]byte
}

func (r *readMsgs) add(off uint64, msg []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.seen[off]; ok {
		return bytes.Equal(old, msg)
	}
	r.seen[off] = bytes.Clone(msg)
	return true
}

// Promise (under -race): readers racing retention and
// appenders either read valid, dense batches or fall behind and get a
// *RangeError whose start is above their offset (never one for an offset
// inside the range or an offset they were handed); what they read is what
// was acknowledged at that offset.
func TestRetentionUnderLoad(t *testing.T) {
	const appenders, perAppender = 4, 300
	opts := memOpts(vfs.NewMemFS())
	opts.SegmentBytes = 8 << 10
	opts.RetentionBytes = 24 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	acks := newAckLog(appenders * perAppender)
	var wg sync.WaitGroup
	for a := range appenders {
		msgs := genMsgs(uint64(a)<<32, 5, 100)
		b := batchOf(t, msgs...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perAppender {
				off, err := e.Append(context.Background(), "t", b)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				acks.add(off, msgs)
			}
		}()
	}
	done := make(chan struct{})
	seen := &readMsgs{seen: map[uint64][]byte{}}
	var rwg sync.WaitGroup
	for r := range 3 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			var res ReadResult
			defer res.Release()
			var got []readMsg
			off := uint64(0)
			read := false // a reader goes on past the end of the load until it read something
			for {
				select {
				case <-done:
					if read {
						return
					}
				default:
				}
				err := e.Read("t", off, 100, int64(r+1)<<11, &res)
				var re *RangeError
				switch {
				case errors.As(err, &re):
					if re.Start <= off {
						t.Errorf("reader %d: %v for an offset that is not below the start", r, err)
						return
					}
					off = re.Start
				case err != nil:
					t.Errorf("reader %d: %v", r, err)
					return
				default:
					read = read || len(res.Chunks) > 0
					for _, c := range res.Chunks {
						got, err = chunkMsgs(got[:0], c, &off, ^uint64(0))
						if err != nil {
							t.Errorf("reader %d: %v", r, err)
							return
						}
						for _, g := range got {
							if !seen.add(g.off, g.data) {
								t.Errorf("reader %d: offset %d read with two contents", r, g.off)
								return
							}
						}
					}
				}
			}
		}()
	}
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			e.ApplyRetention()
		}
	}()
	wg.Wait()
	close(done)
	rwg.Wait()
	for _, a := range acks.snapshot() {
		for i, msg := range a.msgs {
			if g, ok := seen.seen[a.off+uint64(i)]; ok && !bytes.Equal(g, msg) {
				t.Fatalf("offset %d read back different from what was acknowledged", a.off+uint64(i))
			}
		}
	}
	if len(seen.seen) == 0 {
		t.Fatal("readers read nothing")
	}
}

// Promise (seed broker: produce after delete-and-recreate went to the
// deleted file; under -race): topics deleted and re-created while appenders
// and readers run: appends succeed or fail with ErrTopicNotFound, reads
// succeed or fail with a typed error, and the final topic is whole and
// dense before and after a restart.
func TestDeleteRecreateUnderLoad(t *testing.T) {
	opts := memOpts(vfs.NewMemFS())
	opts.SegmentBytes = 8 << 10
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	var wg sync.WaitGroup
	done := make(chan struct{})
	for a := range 3 {
		b := batchOf(t, genMsgs(uint64(a), 5, 100)...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				_, err := e.Append(context.Background(), "t", b)
				if err != nil && !errors.Is(err, ErrTopicNotFound) {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		var res ReadResult
		defer res.Release()
		off := uint64(0)
		for {
			select {
			case <-done:
				return
			default:
			}
			err := e.Read("t", off, 100, 1<<14, &res)
			var re *RangeError
			switch {
			case errors.As(err, &re):
				off = re.Start // a new, shorter topic, or retention
			case errors.Is(err, ErrTopicNotFound):
			case err != nil:
				t.Errorf("reader: %v", err)
				return
			case len(res.Chunks) > 0:
				off = res.Next()
			}
		}
	}()
	for range 50 {
		if err := e.DeleteTopic("t"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if err := e.CreateTopic("t"); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	wg.Wait()
	close(done)
	rwg.Wait()
	end := endOf(t, e, "t")
	readAll(t, e, "t", 0, end)
	e = reopen(t, e, opts)
	if got := endOf(t, e, "t"); got != end {
		t.Fatalf("end %d after restart, was %d", got, end)
	}
	readAll(t, e, "t", 0, end)
}
