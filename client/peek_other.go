//go:build !unix

package client

import "net"

// peeker: no peek on this platform; the background reader reads for good.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return nil }

func (*peeker) closed() error { return nil }
