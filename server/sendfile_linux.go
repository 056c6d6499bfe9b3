//go:build linux && !haraqa_portable

package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendfileOp is the state of the sendfile in progress on a connection,
// guarded by the connection's wmu. Its callbacks are built once per
// connection and the file's RawConn is kept while consumes read the same
// segment file, so that a consume response allocates nothing here. A kept
// file is used only when the chunk being sent holds it (pinned, so open).
type sendfileOp struct {
	sock    syscall.RawConn
	file    *os.File
	frc     syscall.RawConn
	ffd     uintptr
	pos, n  int64
	err     error // what the sendfile loop failed with
	werr    error // what sock.Write reported (deadline, closed socket)
	control func(ffd uintptr)
	write   func(fd uintptr) bool
}

func newSendfileOp(nc net.Conn) (*sendfileOp, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, errors.New("server: connection has no file descriptor for sendfile")
	}
	sock, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	op := &sendfileOp{sock: sock}
	op.write = op.loop
	op.control = func(ffd uintptr) {
		op.ffd = ffd
		op.werr = op.sock.Write(op.write)
	}
	return op, nil
}

// loop sends until done or the socket would block (false: wait for it).
func (op *sendfileOp) loop(fd uintptr) bool {
	for op.n > 0 {
		w, err := unix.Sendfile(int(fd), int(op.ffd), &op.pos, int(min(op.n, 1<<30)))
		if w > 0 {
			op.n -= int64(w)
		}
		switch {
		case err == unix.EAGAIN:
			return false
		case err == unix.EINTR:
			continue
		case err != nil:
			op.err = err
			return true
		case w == 0:
			op.err = errTruncated
			return true
		}
	}
	return true
}

// sendfile sends n bytes of f from pos to the connection, looping on short
// writes and waiting for the socket through its RawConn. wmu is held.
func (c *conn) sendfile(f *os.File, pos, n int64) error {
	if f == nil {
		return errors.New("server: segment has no file for sendfile")
	}
	if c.sf == nil {
		op, err := newSendfileOp(c.nc)
		if err != nil {
			return err
		}
		c.sf = op
	}
	op := c.sf
	if op.file != f {
		frc, err := f.SyscallConn()
		if err != nil {
			return err
		}
		op.file, op.frc = f, frc
	}
	op.pos, op.n, op.err, op.werr = pos, n, nil, nil
	// Both errors are checked: the loop's own error must not be lost to
	// sock.Write's nil.
	cerr := op.frc.Control(op.control)
	switch {
	case cerr != nil:
		return cerr
	case op.werr != nil:
		return op.werr
	case op.err != nil:
		return fmt.Errorf("server: sendfile: %w", op.err)
	}
	return nil
}
