package vfs

import (
	"bytes"
	"errors"
	"testing"
)

// TestWriteAtManyBuffers: more buffers than one pwritev takes (IOV_MAX),
// empty ones among them, land back to back.
func TestWriteAtManyBuffers(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		f, err := e.fs.Create(e.path("many"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var bufs [][]byte
		var want []byte
		for i := 0; i < 2500; i++ {
			b := bytes.Repeat([]byte{byte(i)}, i%5)
			bufs = append(bufs, b)
			want = append(want, b...)
		}
		n, err := f.WriteAt(bufs, 3)
		if err != nil || n != len(want) {
			t.Fatalf("WriteAt = %d, %v; want %d", n, err, len(want))
		}
		got := make([]byte, len(want))
		if _, err := f.ReadAt(got, 3); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadAt: %v, equal %v", err, bytes.Equal(got, want))
		}
		if size, _ := f.Size(); size != int64(len(want))+3 {
			t.Fatalf("Size = %d", size)
		}
	})
}

// TestWriteFileAtomic replaces a file whole, also over a stale temp file
// from a crash, and leaves the old file whole when it fails.
func TestWriteFileAtomic(t *testing.T) {
	forEachFS(t, func(t *testing.T, e *fsEnv) {
		name := e.path("meta")
		if err := WriteFileAtomic(e.fs, name, []byte("one")); err != nil {
			t.Fatal(err)
		}
		f, err := e.fs.Create(name + ".tmp")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([][]byte{[]byte("stale and long")}, 0)
		f.Close()
		if err := WriteFileAtomic(e.fs, name, []byte("two")); err != nil {
			t.Fatal(err)
		}
		if got := e.readFile(t, "meta"); string(got) != "two" {
			t.Fatalf("file holds %q", got)
		}
		names, err := e.fs.List(e.dir)
		if err != nil || len(names) != 1 || names[0] != "meta" {
			t.Fatalf("List = %v, %v", names, err)
		}
		if e.mem == nil {
			return
		}
		boom := errors.New("injected")
		e.mem.SetFault(failOn(OpSync, name+".tmp", boom))
		if err := WriteFileAtomic(e.fs, name, []byte("three")); !errors.Is(err, boom) {
			t.Fatalf("WriteFileAtomic = %v", err)
		}
		e.mem.SetFault(nil)
		if got := e.readFile(t, "meta"); string(got) != "two" {
			t.Fatalf("file holds %q after a failed replace", got)
		}
	})
}

// TestMemFSCrashNamespace: a file created but never made durable by
// SyncDir is gone after a crash; a removed one comes back until SyncDir.
func TestMemFSCrashNamespace(t *testing.T) {
	e := memEnv(t)
	f, _ := e.fs.Create(e.path("a"))
	f.WriteAt([][]byte{[]byte("abc")}, 0)
	f.Sync()
	if got := e.mem.Crash(); got.names[e.path("a")] != nil {
		t.Fatal("unsynced create survived a crash")
	}
	e.fs.SyncDir(e.dir)
	e.fs.Remove(e.path("a"))
	c := e.mem.Crash()
	if b, err := c.ReadFile(e.path("a")); err != nil || string(b) != "abc" {
		t.Fatalf("unsynced remove: %q, %v", b, err)
	}
	e.fs.SyncDir(e.dir)
	if _, err := e.mem.Crash().ReadFile(e.path("a")); err == nil {
		t.Fatal("synced remove undone by a crash")
	}
}

// TestMemFSCrashDirectories checks the directory half of the crash model
// that the engine's durability tests rely on: a new directory (and every
// file in it, synced or not) survives a crash only once its parent was
// synced; a removed directory comes back until its parent is synced; a
// directory removed and made again starts empty.
func TestMemFSCrashDirectories(t *testing.T) {
	m := NewMemFS()
	if err := m.MkdirAll("/v/topics"); err != nil {
		t.Fatal(err)
	}
	m.SyncDir("/")
	m.SyncDir("/v")
	m.SyncDir("/v/topics")
	if err := m.Mkdir("/v/topics/t"); err != nil {
		t.Fatal(err)
	}
	f, _ := m.Create("/v/topics/t/a")
	f.WriteAt([][]byte{[]byte("abc")}, 0)
	f.Sync()
	m.SyncDir("/v/topics/t")
	if names, err := m.Crash().List("/v/topics"); err != nil || len(names) != 0 {
		t.Fatalf("a directory whose parent was never synced survived a crash: %v, %v", names, err)
	}
	m.SyncDir("/v/topics")
	if b, err := m.Crash().ReadFile("/v/topics/t/a"); err != nil || string(b) != "abc" {
		t.Fatalf("synced directory and file after a crash: %q, %v", b, err)
	}
	m.Remove("/v/topics/t/a")
	if err := m.Remove("/v/topics/t"); err != nil {
		t.Fatal(err)
	}
	if b, err := m.Crash().ReadFile("/v/topics/t/a"); err != nil || string(b) != "abc" {
		t.Fatalf("an unsynced directory removal was not undone by a crash: %q, %v", b, err)
	}
	m.SyncDir("/v/topics")
	if names, _ := m.Crash().List("/v/topics"); len(names) != 0 {
		t.Fatalf("a synced directory removal was undone by a crash: %v", names)
	}
	// Made again under the same name, the directory is a new one: the old
	// one's entries do not come back through it.
	m.Mkdir("/v/topics/t")
	m.SyncDir("/v/topics")
	if names, err := m.Crash().List("/v/topics/t"); err != nil || len(names) != 0 {
		t.Fatalf("a remade directory after a crash: %v, %v", names, err)
	}
}
