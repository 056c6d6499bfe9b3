package engine

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// Tests of volume health, identity and locking.

// identityFault fails every open of the named volumes' VOLUME file with
// err while it is set.
func identityFault(fs *vfs.MemFS, err error, vols ...string) {
	fs.SetFault(func(op vfs.Op, name string) error {
		for _, v := range vols {
			if op == vfs.OpOpen && name == v+"/"+volumeName {
				return err
			}
		}
		return nil
	})
}

// Promise: a broker with one volume keeps taking writes when the health
// check cannot read that volume's identity file: a transient error (out of
// file descriptors) is not a volume failure, and the last volume in service
// is never fenced on a read error, since the fault may clear.
func TestHealthCheckReadErrorKeepsLastVolume(t *testing.T) {
	fs := vfs.NewMemFS()
	rec := &logRecorder{}
	o := mirrorOpts(fs, "/v1")
	o.Logger = rec.logger()
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	m := newModel()
	m.appendBatch(t, e, "t", genMsgs(0, 2, 10))
	for _, err := range []error{syscall.EMFILE, syscall.EIO} {
		identityFault(fs, err, "/v1")
		e.CheckVolumes()
		fs.SetFault(nil)
		wantStates(t, e, VolumeHealthy)
		m.appendBatch(t, e, "t", genMsgs(100, 2, 10))
	}
	m.check(t, e, "t", 0)
	if rec.count("not fenced") != 2 {
		t.Fatalf("want a log line per unread identity, got %q", rec.msgs)
	}

	// With a mirror left, a real read error fences; a transient one does not.
	fs2 := vfs.NewMemFS()
	e2 := openEngine(t, mirrorOpts(fs2, "/v1", "/v2"))
	identityFault(fs2, syscall.ENFILE, "/v2")
	e2.CheckVolumes()
	wantStates(t, e2, VolumeHealthy, VolumeHealthy)
	identityFault(fs2, syscall.EIO, "/v2")
	e2.CheckVolumes()
	fs2.SetFault(nil)
	wantStates(t, e2, VolumeHealthy, VolumeFenced)
}

// Promise: a lone volume that was fenced (its identity file vanished, as
// when a disk is unmounted) comes back into service once its identity is
// there again, with every acknowledged message, and takes writes again.
func TestLoneFencedVolumeComesBack(t *testing.T) {
	fs := vfs.NewMemFS()
	o := mirrorOpts(fs, "/v1")
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 40 { // more than one segment
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*4, 4, 100))
	}
	id := mustRead(t, fs, "/v1/"+volumeName)
	if err := fs.Remove("/v1/" + volumeName); err != nil {
		t.Fatal(err)
	}
	e.CheckVolumes()
	wantStates(t, e, VolumeFenced)
	if _, err := e.Append(context.Background(), "t", batchOf(t, []byte("x"))); !errors.Is(err, ErrStorage) {
		t.Fatalf("append on a fenced lone volume: %v, want ErrStorage", err)
	}
	if err := vfs.WriteFileAtomic(fs, "/v1/"+volumeName, id); err != nil {
		t.Fatal(err)
	}
	e.CheckVolumes()
	if vi := volState(t, e, "/v1"); vi.State != VolumeHealthy {
		t.Fatalf("lone volume after its identity came back: %+v", vi)
	}
	m.appendBatch(t, e, "t", genMsgs(1e6, 4, 100))
	m.check(t, e, "t", 0)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, o)
	m.check(t, e, "t", 0)
}

// memUsed returns the bytes of every file under dir.
func memUsed(t *testing.T, fs vfs.FS, dir string) int64 {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, name := range names {
		p := dir + "/" + name
		if _, err := fs.List(p); err == nil {
			n += memUsed(t, fs, p)
			continue
		}
		n += int64(len(mustRead(t, fs, p)))
	}
	return n
}

// Promise: a broker on a disk full to the last byte still stops cleanly
// (Close succeeds, writes the clean-shutdown marker, leaves no temporary
// file) and starts again on the still-full disk, serving every
// acknowledged message; writes fail with a storage error until space
// returns, and then succeed.
func TestDiskFullStopAndStart(t *testing.T) {
	fs := vfs.NewMemFS()
	rec := &logRecorder{}
	o := noZeros(memOpts(fs)) // the disk is sized to the files
	o.Logger = rec.logger()
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	m := newModel()
	for i := range 3 {
		m.appendBatch(t, e, "t", genMsgs(uint64(i)*10, 10, 100))
	}
	if err := e.WriteCheckpoint(); err != nil {
		t.Fatal(err)
	}
	m.appendBatch(t, e, "t", genMsgs(1000, 10, 100)) // the checkpoint changes at Close
	fs.SetCapacity(memUsed(t, fs, memDir))
	if _, err := e.Append(context.Background(), "t", batchOf(t, genMsgs(1e6, 10, 100)...)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close on a full disk: %v", err)
	}
	names, _ := fs.List(memDir)
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			t.Fatalf("Close left %s behind: %v", n, names)
		}
	}
	if _, err := fs.ReadFile(memDir + "/" + cleanName); err != nil {
		t.Fatalf("no clean marker after Close on a full disk: %v", err)
	}
	// A temporary file left by an older crash is removed at open.
	fs.SetCapacity(0)
	if err := vfs.WriteFileAtomic(fs, memDir+"/"+checkpointName+".tmp", nil); err != nil {
		t.Fatal(err)
	}
	fs.SetCapacity(memUsed(t, fs, memDir))
	rec.reset()
	e, err := Open(o)
	if err != nil {
		t.Fatalf("Open on a full disk: %v", err)
	}
	defer e.Close()
	if _, err := fs.ReadFile(memDir + "/" + checkpointName + ".tmp"); err == nil {
		t.Fatal("a stale temporary file survived the open")
	}
	m.check(t, e, "t", 0)
	if _, err := e.Append(context.Background(), "t", batchOf(t, genMsgs(1e6, 10, 100)...)); !errors.Is(err, ErrStorage) {
		t.Fatalf("append on a still-full disk: %v, want ErrStorage", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close on a full disk: %v", err)
	}
	fs.SetCapacity(0)
	e = openEngine(t, o)
	m.appendBatch(t, e, "t", genMsgs(1e6, 10, 100))
	m.check(t, e, "t", 0)
}

// replaceDisk empties a volume directory and marks it as a new volume, as
// an operator does after swapping a failed disk: it is rebuilt from the
// others (an empty directory without the marker is not adopted).
func replaceDisk(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	wipe(t, fs, dir)
	if err := vfs.WriteFileAtomic(fs, dir+"/"+newVolumeName, nil); err != nil {
		t.Fatal(err)
	}
}

// Promise: an acknowledged message is never lost when two brokers are
// pointed at one data directory: the second is refused at open with an
// error naming the volume and the first one's pid, on the operating
// system's file system and on MemFS; once the first closes, it opens.
func TestSecondEngineOnVolumeRefused(t *testing.T) {
	root := t.TempDir()
	d1, d2, d3 := root+"/d1", root+"/d2", root+"/d3"
	fs := vfs.NewMemFS()
	for _, tc := range []struct {
		name string
		fs   vfs.FS
	}{{"os", vfs.OSFS{}}, {"mem", fs}} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Volumes: []string{d1, d2}, FS: tc.fs, Logger: (&logRecorder{}).logger()}
			e, err := Open(o)
			if err != nil {
				t.Fatal(err)
			}
			mustCreate(t, e, "t")
			for _, vols := range [][]string{{d1, d2}, {d3, d2}} {
				o2 := o
				o2.Volumes = vols
				e2, err := Open(o2)
				if err == nil {
					e2.Close()
					t.Fatalf("a second engine opened %v while the first runs", vols)
				}
				if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), vols[0]) && !strings.Contains(err.Error(), vols[1]) {
					t.Fatalf("second open of %v: %v, want ErrLocked naming the volume", vols, err)
				}
				if tc.name == "os" && !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
					t.Fatalf("second open: %v, want the holder's pid", err)
				}
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			e = openEngine(t, o)
			if got := e.Topics(""); len(got) != 1 {
				t.Fatalf("topics after reopening: %v", got)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A shared lock (a read-only tool) keeps a broker out too, and says so.
	release, err := LockVolumeShared(d1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Volumes: []string{d1, d2}, Logger: (&logRecorder{}).logger()}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "shared lock") {
		t.Fatalf("open during a shared lock: %v", err)
	}
	release()
	e := openEngine(t, Options{Volumes: []string{d1, d2}, Logger: (&logRecorder{}).logger()})
	if _, err := LockVolumeShared(d1); !errors.Is(err, ErrLocked) {
		t.Fatalf("shared lock while a broker runs: %v, want ErrLocked", err)
	}
	e.Close()
}

// Promise: a volume directory is never created, and an empty one never
// adopted, once the data set is initialised (it may be an unmounted disk's
// mount point on the root disk): it is fenced with a reason while the
// others serve, and joins only with InitVolumes or a NEW-VOLUME marker.
// A new data set is created whole, an empty disk's lost+found included.
func TestVolumeNotCreatedAfterInit(t *testing.T) {
	root := t.TempDir()
	d1, d2 := root+"/d1", root+"/d2"
	if err := os.MkdirAll(d2+"/lost+found", 0o755); err != nil { // a fresh ext4 disk
		t.Fatal(err)
	}
	o := Options{Volumes: []string{d1, d2}, Logger: (&logRecorder{}).logger()}
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	m := newModel()
	m.appendBatch(t, e, "t", genMsgs(0, 3, 10))
	wantStates(t, e, VolumeHealthy, VolumeHealthy)
	e.Close()

	if err := os.RemoveAll(d2); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, o)
	if vi := volState(t, e, d2); vi.State != VolumeFenced || !strings.Contains(vi.Reason, "missing") {
		t.Fatalf("missing volume at open: %+v", vi)
	}
	if _, err := os.Stat(d2); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing volume was created: %v", err)
	}
	m.appendBatch(t, e, "t", genMsgs(10, 3, 10))
	mustCreate(t, e, "u")
	e.CheckVolumes()
	if _, err := os.Stat(d2); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing volume was created while running: %v", err)
	}
	// The mount point is back, empty: still not adopted.
	if err := os.Mkdir(d2, 0o755); err != nil {
		t.Fatal(err)
	}
	e.CheckVolumes()
	if vi := volState(t, e, d2); vi.State != VolumeFenced {
		t.Fatalf("an empty volume was adopted without a marker: %+v", vi)
	}
	if names, _ := os.ReadDir(d2); len(names) > 1 { // LOCK at most
		t.Fatalf("an empty, unadopted volume was written: %v", names)
	}
	// The operator marks it new: rebuilt, in service.
	if err := os.WriteFile(d2+"/"+newVolumeName, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.CheckVolumes()
	wantStates(t, e, VolumeHealthy, VolumeHealthy)
	if _, err := os.Stat(d2 + "/" + newVolumeName); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the new-volume marker stayed after the adoption")
	}
	m.check(t, e, "t", 0)
	e.Close()

	// Missing at open, created with InitVolumes.
	if err := os.RemoveAll(d2); err != nil {
		t.Fatal(err)
	}
	o.InitVolumes = true
	e = openEngine(t, o)
	wantStates(t, e, VolumeHealthy, VolumeHealthy)
	if got := mirrorsOf(t, e, "t"); len(got) != 2 {
		t.Fatalf("mirrors after -init: %v", got)
	}
	e.Close()
}

// Promise: while running, creating a topic never recreates a volume root
// that vanished (an unmounted disk), so the volume can rejoin when it is
// back.
func TestCreateTopicKeepsVanishedVolumeGone(t *testing.T) {
	root := t.TempDir()
	d1, d2 := root+"/d1", root+"/d2"
	e := openEngine(t, Options{Volumes: []string{d1, d2}, HealthInterval: time.Hour, Logger: (&logRecorder{}).logger()})
	if err := os.RemoveAll(d2); err != nil {
		t.Fatal(err)
	}
	e.CreateTopic("x") // may fail: d2 is not fenced yet
	if _, err := os.Stat(d2); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("topic creation recreated the vanished volume root: %v", err)
	}
	e.CheckVolumes()
	wantStates(t, e, VolumeHealthy, VolumeFenced)
	mustCreate(t, e, "y")
	if _, err := os.Stat(d2); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume root recreated: %v", err)
	}
}

// Promise: an identity file that cannot be read (EIO) fences that one
// volume at open; the broker starts on the others with every message.
func TestUnreadableIdentityFencedAtOpen(t *testing.T) {
	fs := vfs.NewMemFS()
	o := mirrorOpts(fs, "/v1", "/v2")
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	m := newModel()
	m.appendBatch(t, e, "t", genMsgs(0, 3, 10))
	e.Close()
	identityFault(fs, syscall.EIO, "/v1")
	e = openEngine(t, o)
	fs.SetFault(nil)
	if vi := volState(t, e, "/v1"); vi.State != VolumeFenced || !strings.Contains(vi.Reason, "input/output error") {
		t.Fatalf("v1 with an unreadable identity: %+v", vi)
	}
	m.check(t, e, "t", 0)
	// The fault cleared: the volume is this broker's, and rejoins.
	e.CheckVolumes()
	wantStates(t, e, VolumeHealthy, VolumeHealthy)
	m.appendBatch(t, e, "t", genMsgs(10, 3, 10))
	sameFiles(t, fs, "t", "/v1", "/v2")
}

// Promise: an open refused because a directory is not a haraqa volume (a
// wrong path on a new data set) leaves nothing behind in it.
func TestRefusedOpenLeavesNoLockFile(t *testing.T) {
	root := t.TempDir()
	junk := root + "/junk"
	if err := os.MkdirAll(junk, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(junk+"/notes.txt", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Volumes: []string{root + "/new", junk}, Logger: (&logRecorder{}).logger()}); !errors.Is(err, ErrVolume) {
		t.Fatalf("open with a foreign directory: %v, want ErrVolume", err)
	}
	if names, _ := os.ReadDir(junk); len(names) != 1 {
		t.Fatalf("a refused open left files in %s: %v", junk, names)
	}
}

// Promise: after a crash on a disk full to the last byte the broker still
// starts: a topic whose recovery needs space (a sealed segment's index to
// rebuild) is left offline with its files untouched and the reason logged,
// the volume is not fenced for it, the other topics serve, and once space
// is back the next start serves every acknowledged message of it.
func TestDiskFullStartAfterCrash(t *testing.T) {
	fs := vfs.NewMemFS()
	o := mirrorOpts(fs, "/v1")
	e := openEngine(t, o)
	mustCreate(t, e, "t")
	mustCreate(t, e, "u")
	mt, mu := newModel(), newModel()
	for i := range 40 { // a sealed segment and an active one
		mt.appendBatch(t, e, "t", genMsgs(uint64(i)*4, 4, 100))
	}
	mu.appendBatch(t, e, "u", genMsgs(0, 4, 100))
	img := fs.Crash()
	mustCorrupt(t, img, seg("/v1", "t", 0, "idx"), cut(16)) // its index must be rebuilt
	img.SetCapacity(memUsed(t, img, "/v1"))
	rec := &logRecorder{}
	o.FS, o.Logger = img, rec.logger()
	e2, err := Open(o)
	if err != nil {
		t.Fatalf("Open after a crash on a full disk: %v", err)
	}
	wantStates(t, e2, VolumeHealthy)
	if got := e2.Topics(""); len(got) != 1 || got[0] != "u" || rec.count("no space to recover topic") != 1 {
		t.Fatalf("topics %v, log %q: want t offline for lack of space, u served", got, rec.msgs)
	}
	mu.check(t, e2, "u", 0)
	if err := e2.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	img.SetCapacity(0)
	e3 := openEngine(t, o)
	mt.check(t, e3, "t", 0)
	mt.appendBatch(t, e3, "t", genMsgs(1e6, 4, 100))
	mu.check(t, e3, "u", 0)
}
