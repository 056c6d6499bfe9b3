//go:build linux && !haraqa_portable

package vfs

import (
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Linux write path: one pwritev(2) per WriteAt and fdatasync(2) for
// Sync. Build with -tags haraqa_portable to use the portable path
// (osfile_portable.go) on Linux too, as CI does to test it.

// WritePath names the write and sync calls this build uses.
const WritePath = "pwritev+fdatasync"

// writeState keeps the iovec slice between writes, so that a steady
// stream of writes allocates nothing.
type writeState struct {
	iovs []unix.Iovec
}

func (f *osFile) Sync() error {
	rc, err := f.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fdatasync(int(fd)) }); err != nil {
		return err
	}
	return serr
}

// iovMax is the most iovecs one pwritev takes (IOV_MAX on Linux).
const iovMax = 1024

// WriteAt writes bufs with pwritev, looping on short writes, reusing its
// iovec slice so a steady stream of writes allocates nothing.
func (f *osFile) WriteAt(bufs [][]byte, off int64) (int, error) {
	rc, err := f.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	total := 0
	for len(bufs) > 0 {
		f.iovs = f.iovs[:0]
		for _, b := range bufs {
			if len(f.iovs) == iovMax {
				break
			}
			if len(b) > 0 {
				f.iovs = append(f.iovs, unix.Iovec{Base: &b[0], Len: uint64(len(b))})
			}
		}
		if len(f.iovs) == 0 {
			break
		}
		var n int
		var werr error
		cerr := rc.Write(func(fd uintptr) bool {
			r, _, e := unix.Syscall6(unix.SYS_PWRITEV, fd, uintptr(unsafe.Pointer(&f.iovs[0])),
				uintptr(len(f.iovs)), uintptr(off), uintptr(uint64(off)>>32>>32), 0)
			n = int(r)
			if e != 0 {
				n, werr = 0, e
			}
			return werr != syscall.EAGAIN
		})
		if cerr != nil {
			return total, cerr
		}
		if werr != nil {
			return total, &os.PathError{Op: "pwritev", Path: f.f.Name(), Err: werr}
		}
		if n == 0 {
			return total, &os.PathError{Op: "pwritev", Path: f.f.Name(), Err: io.ErrShortWrite}
		}
		total += n
		off += int64(n)
		// Drop what was written, keeping the rest of a partly written buffer.
		for n > 0 {
			if n >= len(bufs[0]) {
				n -= len(bufs[0])
				bufs = bufs[1:]
				continue
			}
			bufs = append([][]byte{bufs[0][n:]}, bufs[1:]...)
			n = 0
		}
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
	}
	return total, nil
}
