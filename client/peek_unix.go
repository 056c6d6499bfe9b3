//go:build unix

package client

import (
	"io"
	"net"
	"syscall"
)

// peeker looks at a plain TCP or Unix socket (not TLS) without blocking
// and without consuming anything. Used by the holder of the read role only.
type peeker struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // p.look, allocated once
	b   [1]byte
	err error
}

// newPeeker returns a peeker for nc, or nil when nc cannot be peeked at.
func newPeeker(nc net.Conn) *peeker {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil
	}
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	p := &peeker{rc: rc}
	p.fn = p.look
	return p
}

// closed returns io.EOF if the peer closed the connection, the socket's
// error if it failed, else nil (nothing to read yet, or bytes waiting).
func (p *peeker) closed() error {
	p.err = nil
	if err := p.rc.Read(p.fn); err != nil {
		return err
	}
	return p.err
}

func (p *peeker) look(fd uintptr) bool {
	n, _, e := syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case e == syscall.EAGAIN || e == syscall.EINTR || n > 0:
	case e != nil:
		p.err = e
	default:
		p.err = io.EOF
	}
	return true
}
