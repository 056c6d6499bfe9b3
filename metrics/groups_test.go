package metrics

import (
	"context"
	"testing"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// A consumer group's lag and in-flight count reach /metrics from the
// engine's groups: lag counts what the group has not acked, in flight
// what its members hold leased.
func TestGroupLagExported(t *testing.T) {
	ctx := context.Background()
	e, err := engine.Open(engine.Options{Dir: "/data", FS: vfs.NewMemFS(), SegmentBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	b, err := record.AppendBatch(nil, make([][]byte, 10)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Append(ctx, "t", b); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateGroup(ctx, "t", "g", engine.GroupConfig{}); err != nil {
		t.Fatal(err)
	}
	m, err := e.JoinGroup(ctx, "t", "g", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.GroupFetch(ctx, "t", "g", m, 4, 0) // [0, 4) leased
	if err != nil {
		t.Fatal(err)
	}
	m.Epoch = res.Epoch
	if err := e.GroupAck(ctx, "t", "g", m, []engine.OffsetRange{{First: 0, Next: 1}}); err != nil {
		t.Fatal(err)
	}
	mt := New(Options{})
	mt.Attach(Sources{Engine: e, Groups: e})
	got := scrape(t, mt)
	if v := got[`haraqa_group_lag_messages{group="g",topic="t"}`]; v != 9 {
		t.Errorf("lag %v, want 9 (10 messages, 1 acked)", v)
	}
	if v := got[`haraqa_group_in_flight_messages{group="g",topic="t"}`]; v != 3 {
		t.Errorf("in flight %v, want 3", v)
	}
}
