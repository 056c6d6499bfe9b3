package cluster

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// directWrites: the loop writes small rounds to peers itself (writevNow).
const directWrites = true

// writevNow writes vecs to c in one writev that does not wait for the
// socket: n is what it took (0 when it was full).
func writevNow(c net.Conn, vecs [][]byte) (n int, err error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var werr error
	vecs = vecs[:min(len(vecs), 1024)]
	err = rc.Write(func(fd uintptr) bool {
		for {
			n, werr = unix.Writev(int(fd), vecs)
			if !errors.Is(werr, unix.EINTR) {
				return true
			}
		}
	})
	if n < 0 {
		n = 0
	}
	if errors.Is(werr, unix.EAGAIN) {
		werr = nil
	}
	if err == nil {
		err = werr
	}
	return n, err
}

func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// writeVecs writes vecs back to back at offset off (pwritev, at most 1,024
// vectors a call; vecs' slices may be advanced).
func writeVecs(f *os.File, vecs [][]byte, off int64) error {
	fd := int(f.Fd())
	for len(vecs) > 0 {
		if len(vecs[0]) == 0 {
			vecs = vecs[1:]
			continue
		}
		n, err := unix.Pwritev(fd, vecs[:min(len(vecs), 1024)], off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "pwritev", Path: f.Name(), Err: err}
		}
		if n == 0 {
			return &os.PathError{Op: "pwritev", Path: f.Name(), Err: io.ErrShortWrite}
		}
		off += int64(n)
		for n > 0 {
			k := min(n, len(vecs[0]))
			vecs[0] = vecs[0][k:]
			n -= k
			if len(vecs[0]) == 0 {
				vecs = vecs[1:]
			}
		}
	}
	return nil
}
