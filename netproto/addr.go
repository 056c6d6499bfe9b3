package netproto

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// ParseAddr splits a broker address into a network and an address for
// net.Dial and net.Listen. "tcp://host:port" and a plain "host:port" are
// TCP; "unix:///path" and a bare path (one with a '/', as in
// /tmp/haraqa.sock or ./b.sock) are a Unix socket. Any other scheme, an
// empty socket path, or a TCP address without a port is an error that
// names the fault; the client and the server wrap it with their own
// context.
func ParseAddr(addr string) (network, address string, err error) {
	network, address = "tcp", addr
	if scheme, rest, ok := strings.Cut(addr, "://"); ok {
		switch scheme {
		case "tcp":
			address = rest
		case "unix":
			network, address = "unix", rest
		default:
			return "", "", fmt.Errorf("unknown scheme %q (want tcp://HOST:PORT, HOST:PORT, unix:///PATH or a socket path)", scheme)
		}
	} else if strings.ContainsRune(addr, '/') {
		network = "unix"
	}
	if network == "unix" {
		if address == "" {
			return "", "", errors.New("no socket path")
		}
		return network, address, nil
	}
	if _, _, err := net.SplitHostPort(address); err != nil {
		return "", "", fmt.Errorf("want HOST:PORT (%v)", err)
	}
	return network, address, nil
}
