package vfs

import (
	"path/filepath"
	"testing"
)

// fsEnv is a file system and a directory on it for one test.
type fsEnv struct {
	name string
	fs   FS
	mem  *MemFS // nil on OSFS
	dir  string
}

func memEnv(t testing.TB) *fsEnv {
	t.Helper()
	m := NewMemFS()
	dir := "/data/topic"
	if err := m.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	// The directory stands for one that existed before the test: its
	// entries in its parents are durable.
	for _, d := range []string{"/", "/data"} {
		if err := m.SyncDir(d); err != nil {
			t.Fatal(err)
		}
	}
	return &fsEnv{name: "mem", fs: m, mem: m, dir: dir}
}

func osEnv(t testing.TB) *fsEnv {
	t.Helper()
	return &fsEnv{name: "os", fs: OSFS{}, dir: t.TempDir()}
}

// forEachFS runs f on a fresh MemFS and on OSFS in a temporary directory.
func forEachFS(t *testing.T, f func(t *testing.T, e *fsEnv)) {
	t.Run("mem", func(t *testing.T) { f(t, memEnv(t)) })
	t.Run("os", func(t *testing.T) { f(t, osEnv(t)) })
}

func (e *fsEnv) path(name string) string { return filepath.Join(e.dir, name) }

func (e *fsEnv) readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := e.fs.ReadFile(e.path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failOn returns a MemFS fault func failing op on file name with err.
func failOn(op Op, name string, err error) func(Op, string) error {
	return func(o Op, n string) error {
		if o == op && n == name {
			return err
		}
		return nil
	}
}
