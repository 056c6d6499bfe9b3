package client

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
)

// WithTLSConfig sets the TLS configuration for a tls://host:port address
// (the CAs to trust in RootCAs, a client certificate for mutual TLS in
// Certificates). Without it, a tls:// address trusts the system's CAs.
// The server name defaults to the address's host. TLS needs a tls://
// address: with any other address, Dial fails with ErrBadOption rather
// than connect in clear text.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *config) {
		if cfg == nil {
			c.badf("WithTLSConfig(nil): want a configuration (&tls.Config{} trusts the system's CAs)")
			return
		}
		c.tls = cfg
	}
}

// tlsScheme starts an address the client dials with TLS over TCP.
const tlsScheme = "tls://"

// splitTLS strips tls:// from addr: TLS over TCP to the rest.
func splitTLS(addr string) (rest string, useTLS bool) {
	if rest, ok := strings.CutPrefix(addr, tlsScheme); ok {
		return "tcp://" + rest, true
	}
	return addr, false
}

// clientTLS runs the TLS handshake on nc, a connection to address
// (host:port), within ctx.
func clientTLS(ctx context.Context, nc net.Conn, address string, cfg *tls.Config) (net.Conn, error) {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg = cfg.Clone()
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			host = address
		}
		cfg.ServerName = host
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return tc, nil
}
