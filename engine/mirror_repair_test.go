package engine

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// Promise: one byte flipped at rest in a
// sealed segment of one volume (its log or its index) is detected after a
// restart (clean or crash), a read of that range returns the right data
// whichever volume serves it, the bad copy is rebuilt from a healthy one
// (never the other way round), and every message is intact.
func TestMirrorSealedFlipRepairedAfterRestart(t *testing.T) {
	for _, restart := range []string{"clean", "crash"} {
		for _, kind := range []string{"log", "idx"} {
			for _, vol := range []string{"/v2", "/v3"} { // v3 serves reads
				t.Run(fmt.Sprintf("%s/%s/%s", restart, kind, vol[1:]), func(t *testing.T) {
					f := newMirrorFixtureWith(t, mirrorOptsNoZeros) // the test compares the active log bytes across a restart
					var img *vfs.MemFS
					if restart == "clean" {
						img = f.closeImage(t)
					} else {
						img = f.fs.Crash()
					}
					before := volumeFiles(t, img, vols3, "t")
					name := seg(vol, "t", 1, kind)
					pos := 700 // inside the second batch
					if kind == "idx" {
						pos = 5 * segment.EntrySize // a middle entry's position
					}
					mustCorrupt(t, img, name, flip(pos))
					e, _ := f.open(t, img)
					f.check(t, e) // served from a good copy
					writerBarrier(t, e, "t")
					bad := e.Scrub(0)
					st := e.Stats()
					// Found once, by the scrubber or (on the read volume) by a
					// read that a mirror served, and repaired once.
					found := bad
					if st.ReadFailovers > 0 {
						found++
					}
					if found != 1 || st.SegmentsRepaired != 1 || (vol == "/v2" && bad != 1) {
						t.Fatalf("scrub found %d bad copies, stats %+v; want 1 found and repaired", bad, st)
					}
					if st.CorruptionsFound == 0 || st.BytesRepaired != int64(len(before["/v1/t"][filepath.Base(seg("/v1", "t", 1, "log"))])) {
						t.Fatalf("stats %+v after one repaired segment", st)
					}
					if bad := e.Scrub(0); bad != 0 {
						t.Fatalf("second scrub found %d bad copies", bad)
					}
					sameFiles(t, img, "t", vols3...)
					for _, v := range []string{"/v1", "/v2", "/v3"} {
						if v == vol {
							continue
						}
						for n, b := range before[v+"/t"] {
							if !strings.HasSuffix(n, ".log") {
								continue
							}
							if got := mustRead(t, img, filepath.Join(v, topicsDir, "t", n)); !bytes.Equal(got, b) {
								t.Fatalf("good copy %s/%s changed", v, n)
							}
						}
					}
					f.check(t, e)
					e = reopen(t, e, f.opts2(img))
					f.check(t, e)
					f.mt.appendBatch(t, e, "t", genMsgs(9e6, 2, 10))
					f.check(t, e)
				})
			}
		}
	}
}

// opts2 returns the fixture's options on fs.
func (f *mirrorFixture) opts2(fs vfs.FS) Options {
	o := f.opts
	o.FS = fs
	return o
}

// Promise: the same flip while the engine runs is found by
// the scrubber and repaired; a read of that range returns the right data,
// before and after the repair; the scrubber keeps to its rate.
func TestMirrorScrubRepairsWhileRunning(t *testing.T) {
	for _, vol := range []string{"/v1", "/v2", "/v3"} {
		t.Run(vol[1:], func(t *testing.T) {
			f := newMirrorFixture(t)
			e := f.e
			first, next := batchRange(fxSegBatch*2 + 3) // a batch of sealed segment 2
			mustCorrupt(t, f.fs, seg(vol, "t", 2, "log"), flip(3*500+100))
			// Read the range: correct data, from a good mirror if need be.
			m := &model{msgs: f.mt.msgs, next: next}
			m.check(t, e, "t", first)
			writerBarrier(t, e, "t")
			bad := e.Scrub(0)
			st := e.Stats()
			if st.SegmentsRepaired != 1 || (vol != "/v3" && bad != 1) {
				t.Fatalf("scrub found %d bad copies; stats %+v", bad, st)
			}
			if st.ScrubPasses != 1 || st.ScrubBytes == 0 || st.CorruptionsFound == 0 || st.BytesRepaired == 0 {
				t.Fatalf("stats %+v", st)
			}
			if bad := e.Scrub(0); bad != 0 {
				t.Fatalf("second scrub found %d bad copies", bad)
			}
			sameFiles(t, f.fs, "t", vols3...)
			m.check(t, e, "t", first)
			f.check(t, e)
			if st := e.Stats(); st.ScrubPasses != 2 {
				t.Fatalf("%d scrub passes, want 2", st.ScrubPasses)
			}
			wantStates(t, e, VolumeHealthy, VolumeHealthy, VolumeHealthy)
		})
	}
}

// Promise (scrubber): a pass keeps to its byte rate.
func TestMirrorScrubRate(t *testing.T) {
	f := newMirrorFixture(t)
	before := f.e.Stats().ScrubBytes
	start := time.Now()
	const rate = 2 << 20
	if bad := f.e.Scrub(rate); bad != 0 {
		t.Fatalf("scrub of a healthy engine found %d bad copies", bad)
	}
	took := time.Since(start)
	n := f.e.Stats().ScrubBytes - before
	if min := float64(n) / rate * 0.8; took.Seconds() < min {
		t.Fatalf("scrubbed %d bytes in %v, faster than %d B/s", n, took, rate)
	}
}

// Promise: a sealed segment truncated below
// its synced length on one volume (the first, which a naive repair would
// pick, or another) is corruption: it is rebuilt from a peer at the next
// open, and the good copies are never cut to match it. The same holds for
// the active segment cut below its synced offset, after a crash.
func TestMirrorTruncatedSegmentRepaired(t *testing.T) {
	cases := []struct {
		name  string
		vol   string
		segNo int
		crash bool
	}{
		{"sealed/v1", "/v1", 1, false},
		{"sealed/v2", "/v2", 0, false},
		{"sealed/v3", "/v3", 2, true},
		{"active/v1", "/v1", activeSeg, true},
		{"active/v3", "/v3", activeSeg, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newMirrorFixtureWith(t, mirrorOptsNoZeros) // the test cuts the active log at the file's end
			var img *vfs.MemFS
			if tc.crash {
				img = f.fs.Crash()
			} else {
				img = f.closeImage(t)
			}
			before := volumeFiles(t, img, vols3, "t")
			name := seg(tc.vol, "t", tc.segNo, "log")
			size := len(mustRead(t, img, name))
			mustCorrupt(t, img, name, cut(size/2+7))
			e, rec := f.open(t, img)
			f.check(t, e)
			st := e.Stats()
			if st.SegmentsRepaired != 1 || st.BytesRepaired != int64(size) {
				t.Fatalf("stats %+v, want one segment of %d bytes repaired", st, size)
			}
			if rec.count("repaired segment from a mirror") != 1 {
				t.Fatalf("repair not logged: %q", rec.msgs)
			}
			sameFiles(t, img, "t", vols3...)
			for _, v := range vols3 {
				got := mustRead(t, img, seg(v, "t", tc.segNo, "log"))
				if want := before[v+"/t"][filepath.Base(name)]; v != tc.vol && !bytes.Equal(got, want) {
					t.Fatalf("good copy on %s changed: %d bytes, was %d", v, len(got), len(want))
				}
			}
			if info := describe(t, e, "t"); info.End != f.mt.next || info.ReadOnly != nil {
				t.Fatalf("topic after repair: %+v", info)
			}
			f.mt.appendBatch(t, e, "t", genMsgs(9e6, 3, 10))
			e = reopen(t, e, f.opts2(img))
			f.check(t, e)
			sameFiles(t, img, "t", vols3...)
		})
	}
}

// Promise: a sealed segment of the read volume cut while
// the engine runs fails no read and crashes nothing: the read is served by
// a mirror and the cut copy is repaired.
func TestMirrorSealedCutWhileRunning(t *testing.T) {
	for _, mapped := range []bool{true, false} {
		t.Run(fmt.Sprintf("mapped=%v", mapped), func(t *testing.T) {
			f := newMirrorFixture(t)
			e, fs := f.e, f.fs
			if !mapped { // after a restart sealed segments are opened lazily
				fs = f.closeImage(t)
				e, _ = f.open(t, fs)
			}
			name := seg("/v3", "t", 1, "log")
			size := len(mustRead(t, fs, name))
			mustCorrupt(t, fs, name, cut(size/3))
			f.check(t, e)
			writerBarrier(t, e, "t")
			if st := e.Stats(); st.ReadFailovers == 0 || st.SegmentsRepaired != 1 {
				t.Fatalf("stats %+v: want the read served by a mirror and the copy repaired", st)
			}
			if bad := e.Scrub(0); bad != 0 {
				t.Fatalf("scrub after the repair found %d bad copies", bad)
			}
			sameFiles(t, fs, "t", vols3...)
		})
	}
}

// Promise: a volume whose whole
// contents (identity included) were deleted while the broker was down, or
// whose directory is gone, is taken as this broker's, repopulated at open
// with files identical to the others', and the topics are whole.
func TestMirrorWipedVolumeRepopulated(t *testing.T) {
	for _, tc := range []struct {
		name  string
		vols  []string
		crash bool
	}{
		{"v2", []string{"/v2"}, false},
		{"v1-crash", []string{"/v1"}, true},
		{"v1-and-v3", []string{"/v1", "/v3"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newMirrorFixture(t)
			var img *vfs.MemFS
			if tc.crash {
				img = f.fs.Crash()
			} else {
				img = f.closeImage(t)
			}
			ids := map[string]string{}
			for _, v := range f.e.Volumes() {
				ids[v.Dir] = v.ID
			}
			for _, v := range tc.vols {
				replaceDisk(t, img, v)
			}
			e, _ := f.open(t, img)
			f.check(t, e)
			wantStates(t, e, VolumeHealthy, VolumeHealthy, VolumeHealthy)
			for _, v := range e.Volumes() {
				wiped := slices.Contains(tc.vols, v.Dir)
				if v.ID == "" || (v.ID == ids[v.Dir]) == wiped {
					t.Fatalf("volume %+v: a wiped volume gets a new id, the others keep theirs (%v)", v, ids)
				}
			}
			// Every segment of "t" (activeSeg+1) and of "u" (1) is copied
			// to each wiped volume.
			if st := e.Stats(); st.SegmentsRepaired != int64(len(tc.vols)*(activeSeg+2)) {
				t.Fatalf("stats %+v: want every segment of both topics copied", st)
			}
			sameFiles(t, img, "t", vols3...)
			sameFiles(t, img, "u", vols3...)
			e = reopen(t, e, f.opts2(img))
			f.check(t, e)
			if st := e.Stats(); st.SegmentsRepaired != 0 {
				t.Fatalf("a clean restart after repopulation repaired %d segments", st.SegmentsRepaired)
			}
		})
	}
}

// Promise: a torn tail on one volume only
// — its active log cut at any byte of its last (acknowledged) batch, or an
// unacknowledged partial batch left after it — is cut on that copy, which
// then catches up from the others: no acknowledged batch is lost and the
// copies end identical.
func TestMirrorTornTailOneVolume(t *testing.T) {
	f := newMirrorFixtureWith(t, mirrorOptsNoZeros) // the test cuts the active log at the file's end
	img := f.fs.Crash()
	name := seg("/v2", "t", activeSeg, "log")
	full := mustRead(t, img, name)
	last := len(batchOf(t, genMsgs(0, fxBatchMsgs, fxMsgBytes)...))
	extra := batchOf(t, genMsgs(5e6, 7, 90)...)
	type tear struct {
		f     func([]byte) []byte
		torn  int  // bytes the open cuts
		short bool // the copy lost acknowledged bytes: it must be caught up
	}
	var cuts []tear
	for n := len(full) - last; n < len(full); n += 13 {
		cuts = append(cuts, tear{cut(n), n - (len(full) - last), true})
	}
	for n := 1; n < len(extra); n += 97 {
		cuts = append(cuts, tear{func(b []byte) []byte { return append(append([]byte(nil), b...), extra[:n]...) }, n, false})
	}
	for i, c := range cuts {
		c2 := img.Crash()
		mustCorrupt(t, c2, name, c.f)
		torn := c.torn
		e, rec := f.open(t, c2)
		if info := describe(t, e, "t"); info.End != f.mt.next || info.ReadOnly != nil {
			t.Fatalf("case %d: %+v, want end %d and writable", i, info, f.mt.next)
		}
		f.check(t, e)
		st := e.Stats()
		if st.TornBytes != int64(torn) || rec.count("cut torn tail") != min(torn, 1) {
			t.Fatalf("case %d: torn bytes %d (want %d), %d reports", i, st.TornBytes, torn, rec.count("cut torn tail"))
		}
		if want := map[bool]int64{true: 1}[c.short]; st.SegmentsRepaired != want {
			t.Fatalf("case %d: the short copy was not caught up: %+v", i, st)
		}
		sameFiles(t, c2, "t", vols3...)
		f.mt.appendBatch(t, e, "t", genMsgs(8e6, 1, 10))
		f.check(t, e)
		f.mt.next-- // the next case starts from the image again
		delete(f.mt.msgs, f.mt.next)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Promise (real files): a sealed log of the read volume
// cut by truncate(2) while it is mapped and being read kills nothing
// (reading past the cut would be SIGBUS): reads are served by a mirror and
// the cut copy is repaired.
func TestMirrorSealedCutUnderMappingOSFS(t *testing.T) {
	root := t.TempDir()
	var vols []string
	for _, v := range vols3 {
		vols = append(vols, filepath.Join(root, v))
	}
	opts := mirrorOpts(vfs.OSFS{}, vols...)
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range fxBatches {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*fxBatchMsgs, fxBatchMsgs, fxMsgBytes))
	}
	m.check(t, e, "t", 0) // maps every segment of the read volume
	name := seg(vols[2], "t", 1, "log")
	if err := os.Truncate(name, 100); err != nil {
		t.Fatal(err)
	}
	m.check(t, e, "t", 0)
	writerBarrier(t, e, "t")
	if st := e.Stats(); st.ReadFailovers == 0 || st.SegmentsRepaired != 1 {
		t.Fatalf("stats %+v: want the read served by a mirror and the copy repaired", st)
	}
	sameFiles(t, vfs.OSFS{}, "t", vols...)
	m.check(t, e, "t", 0)
}
