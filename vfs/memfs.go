package vfs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// Op names a MemFS operation for fault injection.
type Op string

// Operations that a MemFS fault function sees.
const (
	OpCreate  Op = "create"
	OpOpen    Op = "open"
	OpWrite   Op = "write"
	OpSync    Op = "sync"
	OpRename  Op = "rename"
	OpRemove  Op = "remove"
	OpSyncDir Op = "syncdir"
	OpTrunc   Op = "truncate"
	OpMap     Op = "map"
)

// MemFS is an in-memory FS for tests. It models what survives a power loss:
// file contents survive only up to their last Sync, and directory entries
// (creates, renames, removes of files and of directories) only up to the
// last SyncDir of their parent directory. A directory whose own entry was
// never synced is lost in a crash with everything in it, and a removed
// one comes back, with what it durably held, until its parent is synced.
// It can fail any operation (SetFault) and run out of space (SetCapacity).
type MemFS struct {
	mu       sync.Mutex
	names    map[string]*memNode // the live files
	dirs     map[string]*memDir  // the live directories
	capacity int64               // 0: unlimited
	fault    func(op Op, name string) error
	open     int // files opened or created and not closed
	maps     int // mappings not unmapped
}

// memDir is one directory (an inode: a directory removed and made again
// is a new one). Its maps hold its entries as of its last SyncDir.
type memDir struct {
	files map[string]*memNode
	dirs  map[string]*memDir
}

func newMemDir() *memDir {
	return &memDir{files: map[string]*memNode{}, dirs: map[string]*memDir{}}
}

type memNode struct {
	mu     sync.Mutex
	data   []byte
	synced []byte
}

// NewMemFS returns an empty in-memory file system.
func NewMemFS() *MemFS {
	return &MemFS{names: map[string]*memNode{}, dirs: map[string]*memDir{}}
}

// SetFault installs f, called before every operation; a non-nil result is
// returned as that operation's error and the operation does nothing
// (a write fault writes nothing). Pass nil to clear.
func (m *MemFS) SetFault(f func(op Op, name string) error) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

// SetCapacity limits the total bytes of all files; a write past it writes
// what fits and fails with ENOSPC. 0 means unlimited.
func (m *MemFS) SetCapacity(n int64) {
	m.mu.Lock()
	m.capacity = n
	m.mu.Unlock()
}

// Crash returns a new MemFS holding only what was durable in m: the
// directory tree as of each directory's last SyncDir, starting from the
// roots, each file's bytes as of its last Sync. m itself is left as it was.
func (m *MemFS) Crash() *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMemFS()
	clones := map[*memNode]*memNode{}
	var walk func(path string, d *memDir) *memDir
	walk = func(path string, d *memDir) *memDir {
		cd := newMemDir()
		c.dirs[path] = cd
		for base, n := range d.files {
			cn, ok := clones[n]
			if !ok {
				n.mu.Lock()
				cn = &memNode{data: append([]byte(nil), n.synced...), synced: append([]byte(nil), n.synced...)}
				n.mu.Unlock()
				clones[n] = cn
			}
			c.names[filepath.Join(path, base)] = cn
			cd.files[base] = cn
		}
		for base, sd := range d.dirs {
			cd.dirs[base] = walk(filepath.Join(path, base), sd)
		}
		return cd
	}
	for path, d := range m.dirs {
		if filepath.Dir(path) == path { // a root: always there
			walk(path, d)
		}
	}
	return c
}

// Corrupt applies f to the live bytes of name (both live and synced copies),
// for corruption tests.
func (m *MemFS) Corrupt(name string, f func(b []byte) []byte) error {
	m.mu.Lock()
	n, ok := m.names[filepath.Clean(name)]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("memfs: %s: %w", name, os.ErrNotExist)
	}
	n.mu.Lock()
	old := n.data
	n.data = f(old)
	if len(n.data) < len(old) && unsafe.SliceData(n.data) == unsafe.SliceData(old) {
		// Cut in place: zero the cut bytes, as Truncate does, so that a
		// later extension of the file never shows them again.
		clear(old[len(n.data):])
	}
	n.synced = append(n.synced[:0], n.data...)
	n.mu.Unlock()
	return nil
}

// check runs the fault function, if any, without holding m.mu: a fault
// may block (to pause an operation) while other operations go on.
func (m *MemFS) check(op Op, name string) error {
	m.mu.Lock()
	fault := m.fault
	m.mu.Unlock()
	if fault != nil {
		if err := fault(op, name); err != nil {
			return &os.PathError{Op: string(op), Path: name, Err: err}
		}
	}
	return nil
}

func (m *MemFS) used() int64 {
	var total int64
	for _, n := range m.names {
		total += int64(len(n.data))
	}
	return total
}

func (m *MemFS) Create(name string) (File, error) {
	name = filepath.Clean(name)
	if err := m.check(OpCreate, name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirs[filepath.Dir(name)] == nil {
		return nil, &os.PathError{Op: "create", Path: name, Err: os.ErrNotExist}
	}
	if m.dirs[name] != nil {
		return nil, &os.PathError{Op: "create", Path: name, Err: os.ErrExist}
	}
	if _, ok := m.names[name]; ok {
		return nil, &os.PathError{Op: "create", Path: name, Err: os.ErrExist}
	}
	n := &memNode{}
	m.names[name] = n
	m.open++
	return &memFile{fs: m, n: n, name: name}, nil
}

func (m *MemFS) Open(name string) (File, error) {
	name = filepath.Clean(name)
	if err := m.check(OpOpen, name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.names[name]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
	}
	m.open++
	return &memFile{fs: m, n: n, name: name}, nil
}

func (m *MemFS) Remove(name string) error {
	name = filepath.Clean(name)
	if err := m.check(OpRemove, name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.names[name]; !ok {
		if m.dirs[name] != nil {
			for n := range m.names {
				if strings.HasPrefix(n, name+"/") {
					return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
				}
			}
			for d := range m.dirs {
				if strings.HasPrefix(d, name+"/") {
					return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
				}
			}
			delete(m.dirs, name)
			return nil
		}
		return &os.PathError{Op: "remove", Path: name, Err: os.ErrNotExist}
	}
	delete(m.names, name)
	return nil
}

func (m *MemFS) Rename(oldname, newname string) error {
	oldname, newname = filepath.Clean(oldname), filepath.Clean(newname)
	if err := m.check(OpRename, oldname); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.names[oldname]
	if !ok {
		return &os.PathError{Op: "rename", Path: oldname, Err: os.ErrNotExist}
	}
	if m.dirs[filepath.Dir(newname)] == nil {
		return &os.PathError{Op: "rename", Path: newname, Err: os.ErrNotExist}
	}
	delete(m.names, oldname)
	m.names[newname] = n
	return nil
}

func (m *MemFS) MkdirAll(dir string) error {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	for d := dir; ; d = filepath.Dir(d) {
		if _, ok := m.names[d]; ok {
			return &os.PathError{Op: "mkdir", Path: d, Err: syscall.ENOTDIR}
		}
		if m.dirs[d] == nil {
			m.dirs[d] = newMemDir()
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func (m *MemFS) Mkdir(dir string) error {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirs[dir] != nil {
		return nil
	}
	if _, ok := m.names[dir]; ok {
		return &os.PathError{Op: "mkdir", Path: dir, Err: syscall.EEXIST}
	}
	if m.dirs[filepath.Dir(dir)] == nil {
		return &os.PathError{Op: "mkdir", Path: dir, Err: os.ErrNotExist}
	}
	m.dirs[dir] = newMemDir()
	return nil
}

func (m *MemFS) List(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirs[dir] == nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: os.ErrNotExist}
	}
	seen := map[string]bool{}
	for name := range m.names {
		if filepath.Dir(name) == dir {
			seen[filepath.Base(name)] = true
		}
	}
	for d := range m.dirs {
		if d != dir && filepath.Dir(d) == dir {
			seen[filepath.Base(d)] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

func (m *MemFS) SyncDir(dir string) error {
	dir = filepath.Clean(dir)
	if err := m.check(OpSyncDir, dir); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.dirs[dir]
	if d == nil {
		return &os.PathError{Op: "open", Path: dir, Err: os.ErrNotExist}
	}
	clear(d.files)
	clear(d.dirs)
	for name, n := range m.names {
		if filepath.Dir(name) == dir {
			d.files[filepath.Base(name)] = n
		}
	}
	for path, sd := range m.dirs {
		if path != dir && filepath.Dir(path) == dir {
			d.dirs[filepath.Base(path)] = sd
		}
	}
	return nil
}

func (m *MemFS) ReadFile(name string) ([]byte, error) {
	f, err := m.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mf := f.(*memFile)
	mf.n.mu.Lock()
	defer mf.n.mu.Unlock()
	return append([]byte(nil), mf.n.data...), nil
}

// OpenFiles returns the number of files opened (or created) and not yet
// closed, and the number of mappings not yet released: what a real file
// system would keep allocated for an unlinked file.
func (m *MemFS) OpenFiles() (files, maps int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.open, m.maps
}

type memFile struct {
	fs     *MemFS
	n      *memNode
	name   string
	closed bool // guarded by fs.mu
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	if off >= int64(len(f.n.data)) {
		return 0, fmt.Errorf("memfs: read %s at %d: EOF", f.name, off)
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, fmt.Errorf("memfs: short read %s", f.name)
	}
	return n, nil
}

func (f *memFile) WriteAt(bufs [][]byte, off int64) (int, error) {
	if err := f.fs.check(OpWrite, f.name); err != nil {
		return 0, err
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	// room is the bytes this write may place at or past off. A room
	// computed below zero (capacity lowered under the used bytes) is no
	// room, not unlimited.
	limited, room := f.fs.capacity > 0, int64(0)
	if limited {
		room = max(f.fs.capacity-f.fs.used()+int64(len(f.n.data))-off, 0)
	}
	total := 0
	for _, b := range bufs {
		if limited && int64(len(b)) > room {
			b = b[:room]
		}
		end := off + int64(len(b))
		if end > int64(cap(f.n.data)) {
			grown := make([]byte, len(f.n.data), max(end, 2*int64(cap(f.n.data))))
			copy(grown, f.n.data)
			f.n.data = grown
		}
		if end > int64(len(f.n.data)) {
			f.n.data = f.n.data[:end]
		}
		copy(f.n.data[off:], b)
		off = end
		total += len(b)
		if limited {
			room -= int64(len(b))
			if room <= 0 {
				break
			}
		}
	}
	want := 0
	for _, b := range bufs {
		want += len(b)
	}
	if total < want {
		return total, &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	return total, nil
}

func (f *memFile) Sync() error {
	if err := f.fs.check(OpSync, f.name); err != nil {
		return err
	}
	f.n.mu.Lock()
	f.n.synced = append(f.n.synced[:0], f.n.data...)
	f.n.mu.Unlock()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if err := f.fs.check(OpTrunc, f.name); err != nil {
		return err
	}
	// fs.mu is held throughout, as in WriteAt: used() reads every file's
	// length under it.
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	if size <= int64(len(f.n.data)) {
		// Zero the cut bytes so a mapping never sees stale data past the end.
		clear(f.n.data[size:])
		f.n.data = f.n.data[:size]
		return nil
	}
	if size <= int64(cap(f.n.data)) {
		// Extend in place (the spare capacity is zero) so a mapping of
		// this file keeps seeing its bytes.
		f.n.data = f.n.data[:size]
		return nil
	}
	f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	return int64(len(f.n.data)), nil
}

// Map returns a view of the file's bytes. It reserves capacity for length
// bytes so that later writes within length land in the same memory, as
// they would in a shared mapping.
func (f *memFile) Map(length int) ([]byte, func() error, error) {
	if err := f.fs.check(OpMap, f.name); err != nil {
		return nil, nil, err
	}
	f.fs.mu.Lock() // before n.mu: the lock order of WriteAt; held, as used() reads n.data
	defer f.fs.mu.Unlock()
	f.fs.maps++
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	if cap(f.n.data) < length {
		grown := make([]byte, len(f.n.data), length)
		copy(grown, f.n.data)
		f.n.data = grown
	}
	var once sync.Once
	unmap := func() error {
		once.Do(func() {
			f.fs.mu.Lock()
			f.fs.maps--
			f.fs.mu.Unlock()
		})
		return nil
	}
	return f.n.data[:length:length], unmap, nil
}

func (f *memFile) OS() *os.File { return nil }

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if !f.closed {
		f.closed = true
		f.fs.open--
	}
	return nil
}
