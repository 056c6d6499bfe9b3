package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// Every group-state record decodes to what was encoded.
func TestGroupRecordRoundTrip(t *testing.T) {
	g := newGroup("g-1", GroupConfig{Exclusive: true, AckWait: 3 * time.Second, MaxDeliveries: 5, DeadLetterTopic: "dlq",
		Start: StartPosition{Kind: StartTime, Time: time.Unix(0, 1700000000000000000)}}, 42)
	g.epoch, g.dead, g.skipped = 7, 3, 11
	g.acked = g.acked.add(OffsetRange{50, 60}).add(OffsetRange{70, 71})
	r, err := decodeGroupRecord(encodeState(nil, g))
	if err != nil {
		t.Fatal(err)
	}
	s := r.state
	if r.typ != recState || s.name != "g-1" || !s.cfg.Start.Time.Equal(g.cfg.Start.Time) || s.cfg.Exclusive != true ||
		s.cfg.AckWait != g.cfg.AckWait || s.cfg.MaxDeliveries != 5 || s.cfg.DeadLetterTopic != "dlq" || s.cfg.Start.Kind != StartTime ||
		s.committed != 42 || s.epoch != 7 || s.dead != 3 || s.skipped != 11 || len(s.acked) != 2 || s.acked[1] != (OffsetRange{70, 71}) {
		t.Fatalf("state round trip: %+v %+v", r, s)
	}
	rs := []OffsetRange{{1, 2}, {5, 1 << 40}}
	if r, err := decodeGroupRecord(encodeAck(nil, "g", ackDeadLettered, rs)); err != nil || r.typ != recAck || r.flags != ackDeadLettered || len(r.ranges) != 2 || r.ranges[1] != rs[1] {
		t.Fatalf("ack: %+v %v", r, err)
	}
	if r, err := decodeGroupRecord(encodeSeek(nil, "g", 9, 4)); err != nil || r.typ != recSeek || r.offset != 9 || r.epoch != 4 {
		t.Fatalf("seek: %+v %v", r, err)
	}
	if r, err := decodeGroupRecord(encodeSkip(nil, "g", 99)); err != nil || r.typ != recSkip || r.epoch != 99 {
		t.Fatalf("skip: %+v %v", r, err)
	}
	if r, err := decodeGroupRecord(encodeEpoch(nil, "g", 8)); err != nil || r.typ != recEpoch || r.epoch != 8 {
		t.Fatalf("epoch: %+v %v", r, err)
	}
	if r, err := decodeGroupRecord(encodeDelete(nil, "g")); err != nil || r.typ != recDelete || r.name != "g" {
		t.Fatalf("delete: %+v %v", r, err)
	}
}

// Malformed records are refused, never half applied: truncated at every
// byte, trailing bytes, an unknown type, an empty or overflowing range, a
// range count larger than the record.
func TestGroupRecordMalformed(t *testing.T) {
	g := newGroup("g", GroupConfig{}, 1)
	g.acked = g.acked.add(OffsetRange{5, 6})
	for _, rec := range [][]byte{encodeState(nil, g), encodeAck(nil, "g", 0, []OffsetRange{{1, 3}}), encodeSeek(nil, "g", 1, 2)} {
		for n := 0; n < len(rec); n++ {
			if _, err := decodeGroupRecord(rec[:n]); err == nil {
				t.Fatalf("record %x cut at %d decoded", rec, n)
			}
		}
		if _, err := decodeGroupRecord(append(rec, 0)); err == nil {
			t.Fatalf("record %x with a trailing byte decoded", rec)
		}
	}
	bad := [][]byte{
		{99},
		{recAck, 1, 'g', 0, 1, 5, 0}, // empty range
		{recAck, 1, 'g', 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2}, // first + length overflows
		{recAck, 1, 'g', 0, 0xff, 0xff, 0xff, 0xff, 0x0f},                                  // 2^32 ranges in 0 bytes
		{recDelete, 200, 'g'}, // name past the end
	}
	for _, b := range bad {
		if _, err := decodeGroupRecord(b); err == nil {
			t.Fatalf("record %x decoded", b)
		}
	}
}

func FuzzGroupRecord(f *testing.F) {
	g := newGroup("g", GroupConfig{AckWait: time.Second}, 3)
	g.acked = g.acked.add(OffsetRange{5, 9})
	f.Add(encodeState(nil, g))
	f.Add(encodeAck(nil, "g", 1, []OffsetRange{{1, 2}}))
	f.Add(encodeSeek(nil, "g", 1, 2))
	f.Add([]byte{recSnapBegin})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeGroupRecord(b)
		if err != nil {
			return
		}
		for _, x := range r.ranges {
			if x.Next <= x.First {
				t.Fatalf("decoded an empty range %+v", x)
			}
		}
		gs := &groupSet{groups: map[string]*cgroup{"g": newGroup("g", GroupConfig{}, 0)}}
		gs.replayOne(r, nil) // never panics
	})
}

// A snapshot cut short before its end record (a crash, a failed
// compaction) is ignored at replay: the state before it stands, and the
// records written after it (a group created, an ack) apply.
func TestGroupPartialSnapshotIgnored(t *testing.T) {
	dec := func(b []byte) groupRecord {
		r, err := decodeGroupRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	gs := &groupSet{groups: map[string]*cgroup{}}
	snap := gs.replayOne(dec(encodeState(nil, newGroup("g", GroupConfig{}, 10))), nil)
	snap = gs.replayOne(dec([]byte{recSnapBegin}), snap)
	snap = gs.replayOne(dec(encodeStateAs(nil, recSnapState, newGroup("g", GroupConfig{}, 99))), snap)
	if snap == nil || gs.groups["g"].committed != 10 {
		t.Fatalf("a snapshot without its end changed the state: %+v", gs.groups["g"])
	}
	// The compaction failed here; later records follow the cut snapshot.
	snap = gs.replayOne(dec(encodeState(nil, newGroup("h", GroupConfig{}, 5))), snap)
	snap = gs.replayOne(dec(encodeAck(nil, "g", 0, []OffsetRange{{10, 12}})), snap)
	snap = gs.replayOne(dec([]byte{recSnapEnd}), snap)
	if gs.groups["g"].committed != 12 || gs.groups["h"] == nil || gs.groups["h"].committed != 5 {
		t.Fatalf("after a cut snapshot: g %+v h %+v", gs.groups["g"], gs.groups["h"])
	}
	// A whole snapshot replaces everything.
	snap = gs.replayOne(dec([]byte{recSnapBegin}), snap)
	snap = gs.replayOne(dec(encodeStateAs(nil, recSnapState, newGroup("g", GroupConfig{}, 99))), snap)
	gs.replayOne(dec([]byte{recSnapEnd}), snap)
	if len(gs.groups) != 1 || gs.groups["g"].committed != 99 {
		t.Fatalf("a whole snapshot did not apply: %+v", gs.groups)
	}
}

// An exclusive group's epoch survives a restart: the first member after
// it takes over with a higher epoch, and a member id from before the
// restart is refused.
func TestGroupEpochSurvivesRestart(t *testing.T) {
	o := memOpts(vfs.NewMemFS())
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	fill(t, e, "t", 20, 10)
	mustGroup(t, e, "t", "g", GroupConfig{Exclusive: true})
	a := mustJoin(t, e, "t", "g")
	res, err := e.GroupFetch(bg, "t", "g", a, 5, 0)
	if err != nil || len(res.Leases) == 0 {
		t.Fatalf("fetch: %v %+v", err, res)
	}
	a.Epoch = res.Epoch
	e = reopen(t, e, o)
	b := mustJoin(t, e, "t", "g")
	res2, err := e.GroupFetch(bg, "t", "g", b, 5, 0)
	if err != nil || len(res2.Leases) == 0 || res2.Leases[0].First != 0 {
		t.Fatalf("fetch after restart: %v %+v", err, res2)
	}
	if res2.Epoch <= a.Epoch {
		t.Fatalf("epoch %d after restart, was %d", res2.Epoch, a.Epoch)
	}
	if err := e.GroupAck(bg, "t", "g", a, leaseRanges(res)); err == nil {
		t.Fatal("ack by a member from before the restart accepted")
	}
}

// The group-state log is no topic a client can reach: not listed, not
// readable, writable, creatable, truncatable or deletable by its name.
func TestGroupStateLogHidden(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	mustGroup(t, e, "t", "g", GroupConfig{})
	name := groupLogName("t")
	if got := e.Topics(""); len(got) != 1 || got[0] != "t" {
		t.Fatalf("topics %v", got)
	}
	var res ReadResult
	defer res.Release()
	checks := map[string]error{
		"read":     e.Read(name, 0, 1, 1<<20, &res),
		"create":   e.CreateTopic(name),
		"delete":   e.DeleteTopic(name),
		"truncate": func() error { _, err := e.TruncateBefore(bg, name, 1); return err }(),
		"append":   func() error { _, err := e.Append(bg, name, batchOf(t, []byte("x"))); return err }(),
		"offsets":  func() error { _, _, err := e.Offsets(name); return err }(),
		"describe": func() error { _, err := e.Describe(name); return err }(),
	}
	for op, err := range checks {
		if !errors.Is(err, ErrBadTopicName) {
			t.Errorf("%s of %q: %v, want ErrBadTopicName", op, name, err)
		}
	}
	if _, err := e.DescribeGroup("t", "g"); err != nil {
		t.Fatalf("the group after all that: %v", err)
	}
}
