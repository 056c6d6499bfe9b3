package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/haraqa/haraqa/vfs"
)

// flock is an exclusive flock(2) (vfs.Flock) on a volume's LOCK file,
// held through its open descriptor until release.
type flock struct {
	f       *os.File
	path    string
	created bool // the lock file did not exist before
}

func flockVolume(dir string) (volumeLock, error) {
	// A lock file removed by a refused open (discard) between our open and
	// our flock leaves us locking a file no one else will see: try again.
	for range 3 {
		l, err := flockOnce(dir)
		if errors.Is(err, errors.ErrUnsupported) {
			// No flock(2) here (Windows): the volume is locked within
			// the process only, as on a MemFS.
			return memLockVolume(vfs.OSFS{}, dir)
		}
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		if l.current() {
			return l, nil
		}
		l.f.Close()
	}
	return nil, fmt.Errorf("%w: %s: its lock file keeps being replaced", ErrLocked, dir)
}

func flockOnce(dir string) (*flock, error) {
	path := filepath.Join(dir, lockName)
	created := true
	vf, err := vfs.OSFS{}.Create(path)
	if errors.Is(err, os.ErrExist) {
		created = false
		vf, err = vfs.OSFS{}.Open(path)
	}
	if err != nil {
		return nil, err
	}
	if err := vfs.Flock(vf.OS(), true); err != nil {
		vf.Close()
		if errors.Is(err, vfs.ErrLockHeld) {
			return nil, lockedErr(dir, lockHolder(path))
		}
		return nil, err
	}
	// The pid is for the error of the next broker that tries; a failure
	// to record it (a full disk) does not matter.
	if vf.Truncate(0) == nil {
		vf.WriteAt([][]byte{[]byte(strconv.Itoa(os.Getpid()) + "\n")}, 0)
	}
	return &flock{f: vf.OS(), path: path, created: created}, nil
}

func flockShared(dir string) (func() error, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return func() error { return nil }, nil
	}
	if err != nil {
		return nil, err
	}
	if err := vfs.Flock(f, false); err != nil {
		f.Close()
		if errors.Is(err, errors.ErrUnsupported) {
			return func() error { return nil }, nil // see flockVolume
		}
		if errors.Is(err, vfs.ErrLockHeld) {
			return nil, lockedErr(dir, lockHolder(path))
		}
		return nil, err
	}
	return f.Close, nil
}

// lockHolder returns the pid a broker recorded in the lock file, or "".
func lockHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	pid := strings.TrimSpace(string(b))
	if _, err := strconv.Atoi(pid); err != nil {
		return ""
	}
	return pid
}

func (l *flock) current() bool {
	a, err := l.f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(l.path)
	return err == nil && os.SameFile(a, b)
}

// release clears the recorded pid (a shared holder seen later must not be
// taken for this broker) and unlocks by closing the descriptor.
func (l *flock) release() error {
	l.f.Truncate(0)
	return l.f.Close()
}

// discard releases the lock and removes the lock file if this lock made
// it: a refused open leaves nothing in a directory that is not a volume.
func (l *flock) discard() error {
	if l.created && l.current() {
		os.Remove(l.path)
	}
	return l.release()
}
