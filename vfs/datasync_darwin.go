package vfs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// syncCall names the call datasync makes.
const syncCall = "F_FULLFSYNC"

// datasync flushes f to stable storage with fcntl(F_FULLFSYNC): a plain
// fsync on darwin only hands the data to the drive, whose cache may lose
// it at a power cut. A file system without F_FULLFSYNC (some network and
// FUSE ones) gets fsync instead.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			_, serr = unix.FcntlInt(fd, unix.F_FULLFSYNC, 0)
			if serr != unix.EINTR {
				break
			}
		}
		if errors.Is(serr, unix.ENOTSUP) || errors.Is(serr, unix.ENOTTY) || errors.Is(serr, unix.EINVAL) {
			serr = unix.Fsync(int(fd))
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: serr}
	}
	return nil
}
