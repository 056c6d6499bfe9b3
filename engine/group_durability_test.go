package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// groupLogBarrier waits until the group-state log's writer ran everything
// queued before (repairs included).
func groupLogBarrier(t *testing.T, e *Engine, topic string) {
	t.Helper()
	tp, err := e.anyTopic(groupLogName(topic))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.submitCtl(context.Background(), &writerReq{op: opRepair}); err != nil {
		t.Fatal(err)
	}
}

// doneSet returns which offsets of [0, end) a fresh member of the group
// is not given (done), by fetching everything deliverable.
func doneSet(t *testing.T, e *Engine, topic, group string, end uint64) []bool {
	t.Helper()
	done := make([]bool, end)
	for i := range done {
		done[i] = true
	}
	m := mustJoin(t, e, topic, group)
	for {
		res, err := e.GroupFetch(bg, topic, group, m, 100000, 0)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if len(res.Leases) == 0 {
			break
		}
		for _, l := range res.Leases {
			for o := l.First; o < l.Next; o++ {
				done[o] = false
			}
		}
	}
	return done
}

// Acks confirmed before a power loss survive it; acks not confirmed may
// be lost, but a message that was never acked is never taken as done.
func TestGroupAcksSurvivePowerLoss(t *testing.T) {
	for _, small := range []bool{false, true} {
		t.Run(fmt.Sprintf("compacting=%v", small), func(t *testing.T) {
			if small {
				old := compactAfter
				compactAfter = 2 << 10 // compactions while acks run
				t.Cleanup(func() { compactAfter = old })
			}
			fs := vfs.NewMemFS()
			o := memOpts(fs)
			e := openEngine(t, o)
			mustCreate(t, e, "t")
			const n = 60000
			fill(t, e, "t", n, 500)
			mustGroup(t, e, "t", "g", GroupConfig{})
			var mu sync.Mutex
			nconfirmed := 0
			confirmed := make([]bool, n)
			tried := make([]bool, n)
			ctx, cancel := context.WithCancel(bg)
			var wg sync.WaitGroup
			for w := range 3 {
				m := mustJoin(t, e, "t", "g")
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ctx.Err() == nil; i++ {
						res, err := e.GroupFetch(ctx, "t", "g", m, 7+w, 10*time.Millisecond)
						if err != nil || len(res.Leases) == 0 {
							continue
						}
						m.Epoch = res.Epoch
						// Ack every lease but one in five: those stay unacked.
						var rs []OffsetRange
						for j, l := range res.Leases {
							if (i+j)%5 != 0 {
								rs = append(rs, l.OffsetRange)
							}
						}
						if len(rs) == 0 {
							continue
						}
						mu.Lock()
						for _, r := range rs {
							for o := r.First; o < r.Next; o++ {
								tried[o] = true
							}
						}
						mu.Unlock()
						if err := e.GroupAck(ctx, "t", "g", m, rs); err == nil {
							mu.Lock()
							for _, r := range rs {
								for o := r.First; o < r.Next; o++ {
									confirmed[o] = true
								}
								nconfirmed += int(r.Len())
							}
							mu.Unlock()
						}
					}
				}()
			}
			// Crash once a fifth of the topic is confirmed, acks in flight.
			for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Millisecond) {
				mu.Lock()
				enough := nconfirmed >= n/5
				mu.Unlock()
				if enough {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("members confirmed too few acks in 2 minutes")
				}
			}
			// Power loss: only what was synced survives. The confirmed set
			// is read after the image: every ack confirmed before it is in.
			mu.Lock()
			conf := append([]bool(nil), confirmed...)
			mu.Unlock()
			img := fs.Crash()
			cancel()
			if lt, _ := e.anyTopic(groupLogName("t")); small && lt.segments()[0].Base() == 0 {
				t.Fatal("the state log was never compacted")
			}
			wg.Wait()
			mu.Lock()
			tr := append([]bool(nil), tried...)
			mu.Unlock()
			nconf := 0
			for _, c := range conf {
				if c {
					nconf++
				}
			}
			if nconf < n/5 {
				t.Fatalf("%d acks confirmed before the crash", nconf)
			}
			o2 := o
			o2.FS = img
			e2 := openEngine(t, o2)
			done := doneSet(t, e2, "t", "g", n)
			for off := range done {
				if conf[off] && !done[off] {
					t.Fatalf("offset %d: ack confirmed before the power loss, delivered again after it", off)
				}
				if done[off] && !tr[off] {
					t.Fatalf("offset %d: never acked, done after the power loss", off)
				}
			}
			t.Logf("%d acks confirmed before the crash", nconf)
		})
	}
}

// A corrupt copy of the group state on one of three volumes is detected
// and repaired from the others; the group's state is intact.
func TestGroupStateRepairedFromMirror(t *testing.T) {
	for _, restart := range []string{"clean", "crash"} {
		t.Run(restart, func(t *testing.T) {
			fs := vfs.NewMemFS()
			o := mirrorOpts(fs, vols3...)
			e := openEngine(t, o)
			mustCreate(t, e, "t")
			fill(t, e, "t", 200, 10)
			mustGroup(t, e, "t", "g", GroupConfig{})
			m := mustJoin(t, e, "t", "g")
			for i := 0; i < 20; i++ {
				res, err := e.GroupFetch(bg, "t", "g", m, 7, 0)
				if err != nil {
					t.Fatal(err)
				}
				m.Epoch = res.Epoch
				if i%3 != 1 { // some ranges stay unacked: acked above committed
					if err := e.GroupAck(bg, "t", "g", m, leaseRanges(res)); err != nil {
						t.Fatal(err)
					}
				}
			}
			want := mustDescribe(t, e, "t", "g")
			var img *vfs.MemFS
			if restart == "clean" {
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				img = fs.Crash()
			} else {
				img = fs.Crash()
			}
			// v3 serves reads: after a clean stop its active segment is
			// trusted at open and the flip is found by the replay's read;
			// after a crash, v2's is found by the scan at open.
			vol := map[string]string{"clean": "/v3", "crash": "/v2"}[restart]
			name := filepath.Join(vol, topicsDir, groupLogName("t"), segment.LogName(0))
			b := mustRead(t, img, name)
			if len(b) < 400 {
				t.Fatalf("group log is %d bytes", len(b))
			}
			mustCorrupt(t, img, name, flip(300)) // inside the second or third record batch
			o2 := o
			o2.FS = img
			rec := &logRecorder{}
			o2.Logger = rec.logger()
			e2 := openEngine(t, o2)
			got := mustDescribe(t, e2, "t", "g")
			if got.Committed != want.Committed || got.AckedAbove != want.AckedAbove {
				t.Fatalf("after repair: committed %d acked above %d, want %d and %d", got.Committed, got.AckedAbove, want.Committed, want.AckedAbove)
			}
			groupLogBarrier(t, e2, "t")
			if st := e2.Stats(); st.CorruptionsFound == 0 || st.SegmentsRepaired == 0 {
				t.Fatalf("stats %+v: corruption not found or not repaired", st)
			}
			sameFiles(t, img, groupLogName("t"), vols3...)
		})
	}
}

// Deleting a topic deletes its groups: a topic recreated under the name
// has none, and no state of the old one comes back at a restart.
func TestGroupDeletedWithTopic(t *testing.T) {
	fs := vfs.NewMemFS()
	o := memOpts(fs)
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	fill(t, e, "t", 10, 10)
	mustGroup(t, e, "t", "g", GroupConfig{})
	if err := e.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DescribeGroup("t", "g"); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("describe after delete: %v", err)
	}
	mustCreate(t, e, "t")
	if _, err := e.DescribeGroup("t", "g"); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("describe on the recreated topic: %v", err)
	}
	e = reopen(t, e, o)
	if _, err := e.DescribeGroup("t", "g"); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("after restart: %v", err)
	}
	if got := e.Topics(""); len(got) != 1 || got[0] != "t" {
		t.Fatalf("topics %v, want [t] (internal logs hidden)", got)
	}
}

// Group state survives a clean restart, including a seek, a delete of
// another group, counters and a compaction of the state log.
func TestGroupStateReplayed(t *testing.T) {
	old := compactAfter
	compactAfter = 1 << 10
	t.Cleanup(func() { compactAfter = old })
	fs := vfs.NewMemFS()
	o := memOpts(fs)
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	fill(t, e, "t", 1000, 10)
	mustGroup(t, e, "t", "g", GroupConfig{AckWait: time.Minute})
	mustGroup(t, e, "t", "gone", GroupConfig{})
	mustGroup(t, e, "t", "late", GroupConfig{Start: StartPosition{Kind: StartOffset, Offset: 500}})
	m := mustJoin(t, e, "t", "g")
	for i := 0; i < 200; i++ {
		res, err := e.GroupFetch(bg, "t", "g", m, 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		m.Epoch = res.Epoch
		if i%4 != 0 {
			if err := e.GroupAck(bg, "t", "g", m, leaseRanges(res)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.DeleteGroup(bg, "t", "gone"); err != nil {
		t.Fatal(err)
	}
	if off, err := e.SeekGroup(bg, "t", "late", StartPosition{Kind: StartOffset, Offset: 700}); err != nil || off != 700 {
		t.Fatalf("seek: %d %v", off, err)
	}
	want := mustDescribe(t, e, "t", "g")
	wantLate := mustDescribe(t, e, "t", "late")
	lt, _ := e.anyTopic(groupLogName("t"))
	for deadline := time.Now().Add(10 * time.Second); lt.segments()[0].Base() == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("state log never compacted: start %d end %d", lt.segments()[0].Base(), lt.end.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	e = reopen(t, e, o)
	got := mustDescribe(t, e, "t", "g")
	if got.Committed != want.Committed || got.AckedAbove != want.AckedAbove || got.Epoch != want.Epoch || got.Lag != want.Lag {
		t.Fatalf("after restart %+v, want %+v", got, want)
	}
	if got := mustDescribe(t, e, "t", "late"); got.Committed != 700 || got.Epoch != wantLate.Epoch {
		t.Fatalf("sought group after restart: %+v", got)
	}
	if _, err := e.DescribeGroup("t", "gone"); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("deleted group after restart: %v", err)
	}
	list, err := e.ListGroups("t")
	if err != nil || len(list) != 2 || list[0].Name != "g" || list[1].Name != "late" {
		t.Fatalf("list: %v %+v", err, list)
	}
}

// A message delivered MaxDeliveries times without an ack goes to the
// dead-letter topic (with its content) instead of out again, and is
// counted; the group moves past it.
func TestGroupDeadLetter(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	mustCreate(t, e, "dlq")
	mustAppend(t, e, "t", batchOf(t, []byte("a"), []byte("poison"), []byte("c")))
	mustGroup(t, e, "t", "g", GroupConfig{MaxDeliveries: 2, DeadLetterTopic: "dlq"})
	m := mustJoin(t, e, "t", "g")
	for round := 1; round <= 2; round++ {
		res, err := e.GroupFetch(bg, "t", "g", m, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		m.Epoch = res.Epoch
		for _, l := range res.Leases {
			if int(l.Deliveries) != round {
				t.Fatalf("round %d: lease %+v", round, l)
			}
		}
		if round == 1 {
			if err := e.GroupAck(bg, "t", "g", m, []OffsetRange{{0, 1}, {2, 3}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.GroupNack(bg, "t", "g", m, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	// The third delivery would pass MaxDeliveries: dead-lettered instead.
	res, err := e.GroupFetch(bg, "t", "g", m, 10, 200*time.Millisecond)
	if err != nil || len(res.Leases) != 0 {
		t.Fatalf("fetch after max deliveries: %v %+v", err, res)
	}
	info := mustDescribe(t, e, "t", "g")
	if info.DeadLettered != 1 || info.Committed != 3 {
		t.Fatalf("after dead-lettering: %+v", info)
	}
	got := readAll(t, e, "dlq", 0, endOf(t, e, "dlq"))
	if len(got) != 1 || string(got[0].data) != "poison" {
		t.Fatalf("dead-letter topic holds %+v", got)
	}
}

// Crash after crash (power loss, only synced bytes kept) while three
// members consume and ack: across every restart no confirmed ack is ever
// delivered again, nothing never acked is taken as done, and the group
// ends with every message done. Redeliveries of acks that were not yet
// confirmed are counted.
func TestGroupCrashLoop(t *testing.T) {
	for _, small := range []bool{false, true} {
		t.Run(fmt.Sprintf("compacting=%v", small), func(t *testing.T) {
			if small {
				old := compactAfter
				compactAfter = 4 << 10 // compactions (and crashes in them) while acks run
				t.Cleanup(func() { compactAfter = old })
			}
			crashLoop(t)
		})
	}
}

func crashLoop(t *testing.T) {
	const n, cycles = 20000, 30
	fs := vfs.NewMemFS()
	o := memOpts(fs)
	e, err := Open(withFS(o, fs))
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, e, "t")
	fill(t, e, "t", n, 500)
	mustGroup(t, e, "t", "g", GroupConfig{})
	confirmed := make([]bool, n) // ever confirmed
	tried := make([]bool, n)     // ever sent in an ack
	dups := 0
	rng := newRand(t)
	for cycle := 0; ; cycle++ {
		if cycle == cycles {
			t.Fatalf("group not done after %d crashes: %+v", cycles, mustDescribe(t, e, "t", "g"))
		}
		info := mustDescribe(t, e, "t", "g")
		if info.Committed == n {
			t.Logf("done after %d crashes; %d redeliveries of unconfirmed acks", cycle, dups)
			e.Close()
			return
		}
		var mu sync.Mutex
		acked := 0
		stopAt := 200 + rng.IntN(2000)
		ctx, cancel := context.WithCancel(bg)
		var wg sync.WaitGroup
		for range 3 {
			m := mustJoin(t, e, "t", "g")
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					res, err := e.GroupFetch(ctx, "t", "g", m, 50, 5*time.Millisecond)
					if err != nil || len(res.Leases) == 0 {
						if err == nil {
							continue
						}
						return
					}
					m.Epoch = res.Epoch
					rs := leaseRanges(res)
					mu.Lock()
					for _, r := range rs {
						for o := r.First; o < r.Next; o++ {
							if tried[o] && !confirmed[o] {
								dups++
							}
							if confirmed[o] {
								mu.Unlock()
								t.Errorf("offset %d delivered again after its ack was confirmed", o)
								return
							}
							tried[o] = true
						}
					}
					mu.Unlock()
					if err := e.GroupAck(ctx, "t", "g", m, rs); err == nil {
						mu.Lock()
						for _, r := range rs {
							for o := r.First; o < r.Next; o++ {
								confirmed[o] = true
							}
							acked += int(r.Len())
						}
						mu.Unlock()
					}
				}
			}()
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
			mu.Lock()
			enough := acked >= stopAt
			mu.Unlock()
			if enough || mustDescribe(t, e, "t", "g").Committed == n || time.Now().After(deadline) {
				break
			}
		}
		mu.Lock()
		img := fs.Crash() // under mu: the confirmed set is exactly what was confirmed before the image
		conf := append([]bool(nil), confirmed...)
		mu.Unlock()
		cancel()
		wg.Wait()
		e.Close()
		if t.Failed() {
			return
		}
		fs = img
		if e, err = Open(withFS(o, fs)); err != nil {
			t.Fatalf("cycle %d: open: %v", cycle, err)
		}
		// Confirmations after the image may be lost: they count as tried.
		copy(confirmed, conf)
		gs := e.gsets["t"]
		gs.mu.Lock()
		g := gs.groups["g"]
		done := append(rangeSet{{First: 0, Next: g.committed}}, g.acked...)
		var lost []int
		for off, c := range conf {
			if c && !g.done(uint64(off)) {
				lost = append(lost, off)
			}
		}
		gs.mu.Unlock()
		if len(lost) > 0 {
			t.Fatalf("cycle %d: offsets %v: ack confirmed before the crash, not done after it", cycle, lost[:min(len(lost), 10)])
		}
		for _, r := range done {
			for off := r.First; off < r.Next; off++ {
				if !tried[off] {
					t.Fatalf("cycle %d: offset %d never acked, done after the crash (committed %d)", cycle, off, g.committed)
				}
			}
		}
	}
}

func withFS(o Options, fs *vfs.MemFS) Options {
	o.FS = fs
	return o
}

// A volume lost while groups ack gets its copy of the group state back
// when it is replaced: rebuilt from a healthy mirror like any topic, and
// the acks made while it was out are in it.
func TestGroupStateRebuiltOnReplacedVolume(t *testing.T) {
	fs := vfs.NewMemFS()
	o := mirrorOpts(fs, vols3...)
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	fill(t, e, "t", 100, 10)
	mustGroup(t, e, "t", "g", GroupConfig{})
	m := mustJoin(t, e, "t", "g")
	ack := func(n int) {
		res, err := e.GroupFetch(bg, "t", "g", m, n, 0)
		if err != nil {
			t.Fatal(err)
		}
		m.Epoch = res.Epoch
		if err := e.GroupAck(bg, "t", "g", m, leaseRanges(res)); err != nil {
			t.Fatal(err)
		}
	}
	ack(10)
	if err := fs.Remove("/v3/" + volumeName); err != nil {
		t.Fatal(err)
	}
	e.CheckVolumes()
	if vi := volState(t, e, "/v3"); vi.State != VolumeFenced {
		t.Fatalf("v3: %+v", vi)
	}
	replaceDisk(t, fs, "/v3")
	ack(20) // while v3 is out
	e.CheckVolumes()
	wantStates(t, e, VolumeHealthy, VolumeHealthy, VolumeHealthy)
	sameFiles(t, fs, groupLogName("t"), vols3...)
	ack(5)
	sameFiles(t, fs, groupLogName("t"), vols3...)
	// Only the rebuilt copy left: it holds every ack.
	img := fs.Crash()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	o1 := mirrorOpts(img, "/v3")
	o1.InitVolumes = true
	e1 := openEngine(t, o1)
	if got := mustDescribe(t, e1, "t", "g").Committed; got != 35 {
		t.Fatalf("committed %d on the rebuilt volume alone, want 35", got)
	}
}
