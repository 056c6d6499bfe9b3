package vfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/edsrzf/mmap-go"
)

// FS is the narrow file-system seam under segments and the engine. OSFS is
// the real one; MemFS is an in-memory one that can fail the next write or
// sync, run out of space, and crash (keep only synced bytes) so recovery
// tests run in milliseconds.
type FS interface {
	// Create creates a new file; it fails if name exists (never O_TRUNC).
	Create(name string) (File, error)
	// Open opens an existing file for reading and writing.
	Open(name string) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	MkdirAll(dir string) error
	// Mkdir creates dir, whose parent must exist (so a vanished volume root
	// is never recreated under it); an existing directory is no error.
	Mkdir(dir string) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// SyncDir makes the directory's entries (creates, renames, removes) durable.
	SyncDir(dir string) error
	// ReadFile and WriteFileAtomic serve small metadata files.
	ReadFile(name string) ([]byte, error)
}

// File is an open file of an FS.
type File interface {
	io.ReaderAt
	// WriteAt writes bufs back to back at off; it returns the bytes written
	// and an error if fewer than all were written.
	WriteAt(bufs [][]byte, off int64) (int, error)
	// Sync makes the file's data durable (fdatasync on Linux; see
	// WritePath).
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
	// Map maps the first length bytes read-only. Bytes past the end of the
	// file may not be touched. unmap releases the mapping.
	Map(length int) (data []byte, unmap func() error, err error)
	// OS returns the *os.File behind the file, or nil for a fake file.
	OS() *os.File
	Close() error
}

// ErrLockHeld reports that Flock found the file locked by another holder.
var ErrLockHeld = errors.New("vfs: file locked by another holder")

// OSFS is the operating system's file system.
type OSFS struct{}

type osFile struct {
	f *os.File
	// writeState is what the platform's WriteAt keeps between calls
	// (osfile_linux.go, osfile_portable.go).
	writeState
}

func (OSFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

func (OSFS) Open(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

func (OSFS) Remove(name string) error             { return os.Remove(name) }
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (OSFS) MkdirAll(dir string) error            { return os.MkdirAll(dir, 0o755) }
func (OSFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (OSFS) Mkdir(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, os.ErrExist) {
		if st, serr := os.Stat(dir); serr == nil && st.IsDir() {
			return nil
		}
	}
	return err
}

func (OSFS) List(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

func (OSFS) SyncDir(dir string) error { return syncDir(dir) }

func syncDirFsync(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *osFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }
func (f *osFile) Truncate(size int64) error               { return f.f.Truncate(size) }
func (f *osFile) OS() *os.File                            { return f.f }
func (f *osFile) Close() error                            { return f.f.Close() }

func (f *osFile) Size() (int64, error) {
	st, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (f *osFile) Map(length int) ([]byte, func() error, error) {
	if length == 0 {
		return nil, func() error { return nil }, nil
	}
	m, err := mmap.MapRegion(f.f, length, mmap.RDONLY, 0, 0)
	if err != nil {
		return nil, nil, err
	}
	return m, m.Unmap, nil
}

// WriteFileAtomic writes data to name through a temporary file: write, sync,
// rename, sync the directory. A crash leaves the old or the new file whole;
// a failure before the rename removes the temporary file (best effort: a
// full disk must not keep a half-written one).
func WriteFileAtomic(fs FS, name string, data []byte) error {
	tmp := name + ".tmp"
	if err := fs.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	if err := writeSyncClose(f, data); err != nil {
		fs.Remove(tmp)
		return err
	}
	if err := fs.Rename(tmp, name); err != nil {
		fs.Remove(tmp)
		return err
	}
	return fs.SyncDir(filepath.Dir(name))
}

func writeSyncClose(f File, data []byte) error {
	if _, err := f.WriteAt([][]byte{data}, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
