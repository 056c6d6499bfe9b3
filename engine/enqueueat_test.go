package engine

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/haraqa/haraqa/record"
)

// Replicas of a replicated topic store the same bytes: batches enqueued
// with EnqueueAt carry the given append time, not the writer's clock, so
// two engines fed the same batches with the same times hold identical
// logs, and a run never mixes append times.
func TestEnqueueAtStampsGivenTime(t *testing.T) {
	ctx := context.Background()
	logs := make([][]byte, 2)
	for i := range logs {
		e := openEngine(t, Options{Volumes: []string{t.TempDir()}, Now: func() time.Time { return time.Unix(int64(1000*(i+1)), 0) }})
		if err := e.CreateTopic("t"); err != nil {
			t.Fatal(err)
		}
		var ps []Pending
		for j := range 6 {
			b, _ := record.AppendBatch(nil, []byte{byte(j)})
			p, err := e.EnqueueAt(ctx, "t", b, int64(100+j/3)) // two runs of three
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		for j, p := range ps {
			off, err := p.Wait()
			if err != nil || off != uint64(j) {
				t.Fatalf("engine %d batch %d: offset %d, %v", i, j, off, err)
			}
		}
		var res ReadResult
		if err := e.Read("t", 0, 6, 1<<20, &res); err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Chunks {
			logs[i] = append(logs[i], c.Data()...)
		}
		res.Release()
		for pos, j := 0, 0; pos < len(logs[i]); j++ {
			h, err := record.ParseHeader(logs[i][pos:])
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(100 + j/3); h.AppendTime != want {
				t.Fatalf("engine %d batch %d: append time %d, want %d", i, j, h.AppendTime, want)
			}
			pos += h.Size()
		}
	}
	if len(logs[0]) == 0 || !bytes.Equal(logs[0], logs[1]) {
		t.Fatalf("logs differ or empty: %d and %d bytes", len(logs[0]), len(logs[1]))
	}
}

// A replica applying one batch at a time on an idle topic writes it itself
// (EnqueueAtDirect): the append is answered when the call returns, at the
// next offset, stamped with the given append time, and the batches after
// it, direct or queued, follow in order.
func TestEnqueueAtDirectOnIdleTopic(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Options{Volumes: []string{t.TempDir()}, Now: func() time.Time { return time.Unix(5000, 0) }})
	if err := e.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	for j := range 4 {
		waitWriterIdle(t, e, "t")
		b, _ := record.AppendBatch(nil, []byte{byte(j)})
		var p Pending
		var err error
		if j == 2 {
			p, err = e.EnqueueAt(ctx, "t", b, int64(200+j))
		} else {
			p, err = e.EnqueueAtDirect(ctx, "t", b, int64(200+j))
		}
		if err != nil {
			t.Fatal(err)
		}
		if j != 2 && !p.Ready() {
			t.Fatalf("batch %d: EnqueueAtDirect on an idle topic was queued, not written by the caller", j)
		}
		if off, err := p.Wait(); err != nil || off != uint64(j) {
			t.Fatalf("batch %d: offset %d, %v", j, off, err)
		}
	}
	var res ReadResult
	if err := e.Read("t", 0, 4, 1<<20, &res); err != nil {
		t.Fatal(err)
	}
	var log []byte
	for _, c := range res.Chunks {
		log = append(log, c.Data()...)
	}
	res.Release()
	j := 0
	for pos := 0; pos < len(log); j++ {
		h, err := record.ParseHeader(log[pos:])
		if err != nil {
			t.Fatal(err)
		}
		if h.AppendTime != int64(200+j) || h.BaseOffset != uint64(j) {
			t.Fatalf("batch %d: append time %d, offset %d", j, h.AppendTime, h.BaseOffset)
		}
		pos += h.Size()
	}
	if j != 4 {
		t.Fatalf("%d batches read back, want 4", j)
	}
}
