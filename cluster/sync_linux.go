package cluster

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

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
