package engine

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/haraqa/haraqa/segment"
)

// Tests of volume health, identity and locking.

// identityFault fails every open of the named volumes' VOLUME file with
// err while it is set.
func identityFault(fs *segment.MemFS, err error, vols ...string) {
	fs.SetFault(func(op segment.Op, name string) error {
		for _, v := range vols {
			if op == segment.OpOpen && name == v+"/"+volumeName {
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
	fs := segment.NewMemFS()
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
	fs2 := segment.NewMemFS()
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
	fs := segment.NewMemFS()
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
	if err := segment.WriteFileAtomic(fs, "/v1/"+volumeName, id); err != nil {
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
func memUsed(t *testing.T, fs segment.FS, dir string) int64 {
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
	fs := segment.NewMemFS()
	rec := &logRecorder{}
	o := memOpts(fs)
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
	if err := segment.WriteFileAtomic(fs, memDir+"/"+checkpointName+".tmp", nil); err != nil {
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
