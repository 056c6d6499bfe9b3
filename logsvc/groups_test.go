package logsvc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// shareTopic has four members consume a topic of n messages through one
// group, via the logsvc interface a front end uses, until the group is
// done; every message must be acked exactly once and the acked union must
// be exactly the topic.
func shareTopic(t *testing.T, n, perFetch int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e, err := engine.Open(engine.Options{Dir: "/data", FS: vfs.NewMemFS(), SegmentBytes: 16 << 20, SegmentEntries: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var svc logsvc.Service = e
	if err := svc.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	msgs := make([][]byte, 4096)
	for i := range msgs {
		msgs[i] = []byte("message")
	}
	for i := 0; i < n; i += len(msgs) {
		b, err := record.AppendBatch(nil, msgs[:min(len(msgs), n-i)]...)
		if err != nil {
			t.Fatal(err)
		}
		p, err := svc.Enqueue(ctx, "t", b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.CreateGroup(ctx, "t", "g", engine.GroupConfig{}); err != nil {
		t.Fatal(err)
	}
	acked := make([]uint8, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		m, err := svc.JoinGroup(ctx, "t", "g", "worker")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res engine.ReadResult
			defer res.Release()
			for ctx.Err() == nil {
				f, err := svc.GroupFetch(ctx, "t", "g", m, perFetch, 20*time.Millisecond)
				if err != nil {
					errs <- err
					return
				}
				if len(f.Leases) == 0 {
					if info, err := svc.DescribeGroup("t", "g"); err != nil || info.Committed == uint64(n) {
						return
					}
					continue
				}
				m.Epoch = f.Epoch
				var ranges []engine.OffsetRange
				for _, l := range f.Leases {
					// What a front end does: read the leased range's batches.
					if err := svc.Read("t", l.First, l.Len(), 1<<20, &res); err != nil || len(res.Chunks) == 0 {
						errs <- err
						return
					}
					mu.Lock()
					for o := l.First; o < l.Next; o++ {
						acked[o]++
					}
					mu.Unlock()
					ranges = append(ranges, l.OffsetRange)
				}
				if err := svc.GroupAck(ctx, "t", "g", m, ranges); err != nil {
					errs <- err
					return
				}
			}
			errs <- ctx.Err()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("member: %v", err)
		}
	}
	for o, c := range acked {
		if c != 1 {
			t.Fatalf("offset %d acked %d times, want exactly once", o, c)
		}
	}
	info, err := svc.DescribeGroup("t", "g")
	if err != nil {
		t.Fatal(err)
	}
	if info.Committed != uint64(n) || info.Lag != 0 || info.InFlight != 0 || info.Redeliveries != 0 {
		t.Fatalf("after the run: %+v", info)
	}
}

// Four members share 1,000,000 messages through a group: each message is
// acked exactly once when no member fails, and the union is exactly the
// topic.
func TestGroupFourMembersExactlyOnce(t *testing.T) { shareTopic(t, 1_000_000, 1000) }

// The same with small fetches: many leases and acks in flight at once.
func TestGroupFourMembersSmallFetches(t *testing.T) { shareTopic(t, 50_000, 37) }
