package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// Helpers of the mirrored-volume tests: three volumes on one
// MemFS, a fixture with several sealed segments and an active one, file
// comparisons across volumes, and fault switches per volume.

var vols3 = []string{"/v1", "/v2", "/v3"}

// Fixture geometry: 32 batches per segment, 100 batches of 4 messages:
// three sealed segments and an active one holding 4 batches.
const (
	fxBatches   = 100
	fxBatchMsgs = 4
	fxMsgBytes  = 100
	fxSegBatch  = 32
)

// mirrorOpts returns options for an engine with the given volumes on fs.
// The health and scrub loops are idle (tests call CheckVolumes and Scrub).
func mirrorOpts(fs vfs.FS, vols ...string) Options {
	return Options{Volumes: vols, FS: fs, SegmentBytes: 64 << 10, SegmentEntries: fxSegBatch,
		HealthInterval: time.Hour, ScrubInterval: time.Hour, Logger: (&logRecorder{}).logger()}
}

// mirrorFixture is an engine on three volumes holding topic "t" (several
// sealed segments plus an active one) and a small topic "u".
type mirrorFixture struct {
	fs     *vfs.MemFS
	opts   Options
	e      *Engine
	mt, mu *model
	rec    *logRecorder
}

func newMirrorFixture(t *testing.T) *mirrorFixture {
	t.Helper()
	return newMirrorFixtureWith(t, mirrorOpts)
}

// newMirrorFixtureWith is newMirrorFixture with the options of opts (say
// noZeros around mirrorOpts).
func newMirrorFixtureWith(t *testing.T, opts func(vfs.FS, ...string) Options) *mirrorFixture {
	t.Helper()
	f := &mirrorFixture{fs: vfs.NewMemFS(), mt: newModel(), mu: newModel(), rec: &logRecorder{}}
	f.opts = opts(f.fs, vols3...)
	f.opts.Logger = f.rec.logger()
	f.e = openEngine(t, f.opts)
	mustCreate(t, f.e, "t")
	mustCreate(t, f.e, "u")
	for i := range fxBatches {
		f.mt.appendBatch(t, f.e, "t", genMsgs(uint64(i)*fxBatchMsgs, fxBatchMsgs, fxMsgBytes))
	}
	for i := range 5 {
		f.mu.appendBatch(t, f.e, "u", genMsgs(1e6+uint64(i)*3, 3, 50))
	}
	if n := describe(t, f.e, "t").Segments; n != fxBatches/fxSegBatch+1 {
		t.Fatalf("fixture has %d segments, want %d", n, fxBatches/fxSegBatch+1)
	}
	return f
}

// open opens an engine on fs (the fixture's or a crash image) with the
// fixture's options and a fresh log recorder.
func (f *mirrorFixture) open(t *testing.T, fs vfs.FS) (*Engine, *logRecorder) {
	t.Helper()
	o := f.opts
	o.FS = fs
	rec := &logRecorder{}
	o.Logger = rec.logger()
	return openEngine(t, o), rec
}

// closeImage closes the fixture's engine cleanly and returns an image of
// what it left (a crash copy of a cleanly closed FS is the same files).
func (f *mirrorFixture) closeImage(t *testing.T) *vfs.MemFS {
	t.Helper()
	if err := f.e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return f.fs.Crash()
}

// check checks both topics of the fixture against e.
func (f *mirrorFixture) check(t *testing.T, e *Engine) {
	t.Helper()
	f.mt.check(t, e, "t", 0)
	f.mu.check(t, e, "u", 0)
}

// seg returns the path of a file of segment number i (0 = the first) of
// topic on vol. kind is "log", "idx" or "seal".
func seg(vol, topic string, i int, kind string) string {
	base := uint64(i * fxSegBatch * fxBatchMsgs)
	name := map[string]string{"log": segment.LogName(base), "idx": segment.IndexName(base), "seal": segment.SealName(base)}[kind]
	return filepath.Join(vol, topicsDir, topic, name)
}

// activeSeg is the index of the fixture's active segment of "t".
const activeSeg = fxBatches / fxSegBatch

// batchRange returns the offsets [first, next) of fixture batch i of "t".
func batchRange(i int) (uint64, uint64) {
	return uint64(i * fxBatchMsgs), uint64((i + 1) * fxBatchMsgs)
}

// flip returns a Corrupt function that flips one byte at pos.
func flip(pos int) func([]byte) []byte {
	return func(b []byte) []byte { b[pos] ^= 0x20; return b }
}

// cut returns a Corrupt function that cuts the file to n bytes in place,
// as truncate(2) does: a mapping of the file sees the cut bytes as zeros.
func cut(n int) func([]byte) []byte {
	return func(b []byte) []byte { return b[:n] }
}

func mustCorrupt(t *testing.T, fs *vfs.MemFS, name string, f func([]byte) []byte) {
	t.Helper()
	if err := fs.Corrupt(name, f); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// topicFiles returns the files of topic on vol by name.
func topicFiles(t *testing.T, fs vfs.FS, vol, topic string) map[string][]byte {
	t.Helper()
	dir := filepath.Join(vol, topicsDir, topic)
	names, err := fs.List(dir)
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	out := map[string][]byte{}
	for _, n := range names {
		out[n] = mustRead(t, fs, filepath.Join(dir, n))
	}
	return out
}

// volumeFiles returns topicFiles for every topic of every volume.
func volumeFiles(t *testing.T, fs vfs.FS, vols []string, topics ...string) map[string]map[string][]byte {
	t.Helper()
	out := map[string]map[string][]byte{}
	for _, v := range vols {
		for _, tp := range topics {
			out[v+"/"+tp] = topicFiles(t, fs, v, tp)
		}
	}
	return out
}

// sameFiles fails unless every volume holds byte-identical files of topic.
// The producer checkpoint is left out: a volume out of service when it was
// written keeps an older one (the newest that matches the log is used).
func sameFiles(t *testing.T, fs vfs.FS, topic string, vols ...string) {
	t.Helper()
	want := topicFiles(t, fs, vols[0], topic)
	delete(want, producersName)
	if len(want) == 0 {
		t.Fatalf("%s holds no files of %q", vols[0], topic)
	}
	for _, v := range vols[1:] {
		got := topicFiles(t, fs, v, topic)
		delete(got, producersName)
		if len(got) != len(want) {
			t.Fatalf("%s holds %d files of %q (%v), %s holds %d (%v)", v, len(got), topic, keys(got), vols[0], len(want), keys(want))
		}
		for n, b := range want {
			if _, sealed := want[strings.TrimSuffix(n, ".idx")+".seal"]; strings.HasSuffix(n, ".idx") && !sealed {
				// An active segment's index is in memory until it is
				// sealed or closed; its file may lag (derived data).
				continue
			}
			g, ok := got[n]
			if _, sealed := want[strings.TrimSuffix(n, ".log")+".seal"]; ok && strings.HasSuffix(n, ".log") && !sealed {
				// An active log may end in zeros written ahead (fsync=always),
				// which a copy made by a repair does not have: its batches
				// must match, and what follows them be zeros.
				g, b = logData(t, v+"/"+n, g), logData(t, vols[0]+"/"+n, b)
			}
			if !ok || !bytes.Equal(g, b) {
				t.Fatalf("%s/%s differs from %s's copy (%d bytes vs %d)", v, n, vols[0], len(g), len(b))
			}
		}
	}
}

// logData returns an active log's batches: the bytes up to the end of its
// last valid batch. Whatever follows must be zeros (written ahead).
func logData(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	sc := record.NewScanner(b)
	for sc.Next() {
	}
	end := sc.End()
	if !record.IsZero(b[end:]) {
		t.Fatalf("%s: bytes after its last batch (at %d of %d) are not zeros: %v", name, end, len(b), sc.Err())
	}
	return b[:end]
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// wipe removes everything under dir (dir itself stays).
func wipe(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := fs.List(p); err == nil {
			wipe(t, fs, p)
		}
		if err := fs.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// volState returns the state of volume dir.
func volState(t *testing.T, e *Engine, dir string) VolumeInfo {
	t.Helper()
	for _, v := range e.Volumes() {
		if v.Dir == dir {
			return v
		}
	}
	t.Fatalf("no volume %s in %+v", dir, e.Volumes())
	return VolumeInfo{}
}

func wantStates(t *testing.T, e *Engine, states ...VolumeState) {
	t.Helper()
	vs := e.Volumes()
	for i, v := range vs {
		if v.State != states[i] {
			t.Fatalf("volumes %+v, want states %v", vs, states)
		}
	}
}

// mirrorsOf returns the volumes of the topic's view, in order.
func mirrorsOf(t *testing.T, e *Engine, topic string) []string {
	t.Helper()
	tp, err := e.topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range tp.view.Load().mirrors {
		out = append(out, m.vol.dir)
	}
	return out
}

// readVolume returns the volume a read of topic at offset is served from.
func readVolume(t *testing.T, e *Engine, topic string, offset uint64) string {
	t.Helper()
	var res ReadResult
	defer res.Release()
	if err := e.Read(topic, offset, 1, 1<<20, &res); err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(res.Chunks[0].seg.Dir()))
}

// writerBarrier waits until topic's writer answered everything queued
// before it (a repair that a read failover queued, say).
func writerBarrier(t *testing.T, e *Engine, topic string) {
	t.Helper()
	tp, err := e.topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.submitCtl(context.Background(), &writerReq{op: opRepair}); err != nil {
		t.Fatal(err)
	}
}

// readErr reads [from, from+n) of topic and returns the error.
func readErr(e *Engine, topic string, from, n uint64) error {
	var res ReadResult
	defer res.Release()
	return e.Read(topic, from, n, 1<<20, &res)
}

// faults is a switchable MemFS fault: while set, op (any op when "") on a
// path under one of the volume prefixes fails with err.
type faults struct {
	mu  sync.Mutex
	on  map[string]bool // volume dir → failing
	ops map[vfs.Op]bool
	err error
	hit int
}

func newFaults(fs *vfs.MemFS, err error, ops ...vfs.Op) *faults {
	f := &faults{on: map[string]bool{}, ops: map[vfs.Op]bool{}, err: err}
	for _, op := range ops {
		f.ops[op] = true
	}
	fs.SetFault(f.check)
	return f
}

func (f *faults) set(on bool, vols ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range vols {
		f.on[v] = on
	}
}

func (f *faults) hits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hit
}

func (f *faults) check(op vfs.Op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ops) > 0 && !f.ops[op] {
		return nil
	}
	for v, on := range f.on {
		if on && strings.HasPrefix(name, v+"/") {
			f.hit++
			return f.err
		}
	}
	return nil
}

// routeFS sends each path to the MemFS of its volume, so that one volume
// can run out of space on its own (MemFS capacity is per file system).
type routeFS struct{ vols map[string]*vfs.MemFS }

func newRouteFS(vols ...string) *routeFS {
	r := &routeFS{vols: map[string]*vfs.MemFS{}}
	for _, v := range vols {
		r.vols[v] = vfs.NewMemFS()
	}
	return r
}

func (r *routeFS) pick(name string) vfs.FS {
	name = filepath.Clean(name)
	for v, fs := range r.vols {
		if name == v || strings.HasPrefix(name, v+"/") {
			return fs
		}
	}
	return errFS{}
}

// crash returns the routeFS of what every volume kept durable.
func (r *routeFS) crash() *routeFS {
	c := &routeFS{vols: map[string]*vfs.MemFS{}}
	for v, fs := range r.vols {
		c.vols[v] = fs.Crash()
	}
	return c
}

func (r *routeFS) Create(name string) (vfs.File, error) { return r.pick(name).Create(name) }
func (r *routeFS) Open(name string) (vfs.File, error)   { return r.pick(name).Open(name) }
func (r *routeFS) Remove(name string) error             { return r.pick(name).Remove(name) }
func (r *routeFS) Rename(o, n string) error             { return r.pick(o).Rename(o, n) }
func (r *routeFS) MkdirAll(dir string) error            { return r.pick(dir).MkdirAll(dir) }
func (r *routeFS) Mkdir(dir string) error               { return r.pick(dir).Mkdir(dir) }
func (r *routeFS) List(dir string) ([]string, error)    { return r.pick(dir).List(dir) }
func (r *routeFS) ReadFile(name string) ([]byte, error) { return r.pick(name).ReadFile(name) }

// SyncDir of a directory holding volume roots (on the disk the test does
// not model) syncs it in the file system of each volume under it: that is
// where the volume root's own entry lives.
func (r *routeFS) SyncDir(dir string) error {
	dir = filepath.Clean(dir)
	if _, outside := r.pick(dir).(errFS); !outside {
		return r.pick(dir).SyncDir(dir)
	}
	synced := false
	for v, fs := range r.vols {
		if _, err := fs.List(dir); err == nil && filepath.Dir(v) == dir {
			if err := fs.SyncDir(dir); err != nil {
				return err
			}
			synced = true
		}
	}
	if !synced {
		return errOutside
	}
	return nil
}

// errFS refuses everything: paths outside the test's volumes.
type errFS struct{}

var errOutside = &os.PathError{Op: "route", Path: "?", Err: syscall.ENOENT}

func (errFS) Create(string) (vfs.File, error) { return nil, errOutside }
func (errFS) Open(string) (vfs.File, error)   { return nil, errOutside }
func (errFS) Remove(string) error             { return errOutside }
func (errFS) Rename(string, string) error     { return errOutside }
func (errFS) MkdirAll(string) error           { return errOutside }
func (errFS) Mkdir(string) error              { return errOutside }
func (errFS) List(string) ([]string, error)   { return nil, errOutside }
func (errFS) SyncDir(string) error            { return errOutside }
func (errFS) ReadFile(string) ([]byte, error) { return nil, errOutside }

// wantErr fails unless err matches every target.
func wantErr(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("%s: err = %v, want %v", what, err, target)
		}
	}
}

// mirrorOptsNoZeros is mirrorOpts with noZeros.
func mirrorOptsNoZeros(fs vfs.FS, vols ...string) Options { return noZeros(mirrorOpts(fs, vols...)) }
