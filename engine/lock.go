package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"

	"github.com/haraqa/haraqa/vfs"
)

// Volume locks. An engine holds an exclusive lock on every volume it uses
// from Open to Close, so that a second broker pointed at the same
// directory is refused instead of overwriting the first one's messages.
// On the operating system's file system it is a flock(2) on the volume's
// LOCK file (flock.go; vfs.Flock on Linux and darwin), which also holds
// the pid of the broker that has it; read-only tools take a shared lock
// (LockVolumeShared). Any other FS (MemFS in tests), and the OS's where
// there is no flock (Windows), is locked within the process only: two
// engines on one MemFS refuse each other the same way.

// ErrLocked reports a volume in use by another process (or another engine
// of this one).
var ErrLocked = errors.New("engine: volume in use")

const lockName = "LOCK"

// volumeLock is a lock held on one volume directory.
type volumeLock interface {
	// current reports whether the lock still covers the directory's lock
	// file: false once the directory was removed or another disk mounted
	// on it.
	current() bool
	release() error
	// discard is release after a refused open: it also removes a lock
	// file the lock created.
	discard() error
}

// lockVolume takes the exclusive lock of the volume directory dir, which
// must exist.
func lockVolume(fs vfs.FS, dir string) (volumeLock, error) {
	switch fs.(type) {
	case vfs.OSFS, *vfs.OSFS:
		return flockVolume(dir)
	}
	return memLockVolume(fs, dir)
}

// LockVolumeShared takes a shared lock on the volume directory dir for a
// read-only tool: a broker cannot start on it meanwhile, and a running
// broker makes it fail with ErrLocked (naming the broker's pid). A
// directory without a LOCK file was never used by a broker that locks:
// nothing is locked and release does nothing.
func LockVolumeShared(dir string) (release func() error, err error) {
	return flockShared(dir)
}

func lockedErr(dir, pid string) error {
	if pid == "" {
		return fmt.Errorf("%w: %s is locked by another process (a shared lock, as haraqa-dump takes, or a broker that wrote no pid): two brokers must never share a volume", ErrLocked, dir)
	}
	return fmt.Errorf("%w: %s is locked by another broker (pid %s): two brokers must never share a volume", ErrLocked, dir, pid)
}

// memLocks are the locks of FS implementations other than the OS's.
var memLocks = struct {
	sync.Mutex
	held map[memLockKey]bool
}{held: map[memLockKey]bool{}}

type memLockKey struct {
	fs  vfs.FS
	dir string
}

type memLock struct{ key memLockKey }

func memLockVolume(fs vfs.FS, dir string) (volumeLock, error) {
	if !reflect.TypeOf(fs).Comparable() {
		return noLock{}, nil // cannot tell two such file systems apart
	}
	key := memLockKey{fs, filepath.Clean(dir)}
	memLocks.Lock()
	defer memLocks.Unlock()
	if memLocks.held[key] {
		return nil, lockedErr(dir, "")
	}
	memLocks.held[key] = true
	return &memLock{key}, nil
}

func (l *memLock) current() bool { return true }

func (l *memLock) discard() error { return l.release() }

func (l *memLock) release() error {
	memLocks.Lock()
	delete(memLocks.held, l.key)
	memLocks.Unlock()
	return nil
}

type noLock struct{}

func (noLock) current() bool  { return true }
func (noLock) release() error { return nil }
func (noLock) discard() error { return nil }
