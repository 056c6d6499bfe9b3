// Package tlsconf builds the broker's server TLS configuration from
// certificate files and reloads them in place: a Reload (the broker calls
// it on SIGHUP) makes new handshakes use the new certificate and client
// CAs, while connections already established go on with theirs.
//
// Every listener that speaks TLS (the native protocol's TCP listener, the
// -http listener, the Kafka listener) takes its *tls.Config from Config:
//
//	srv, err := tlsconf.NewServer(certFile, keyFile, clientCAFile)
//	l = tls.NewListener(l, srv.Config(tls.RequireAndVerifyClientCert))
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Server holds the current certificate and client CAs.
type Server struct {
	certFile, keyFile, caFile string
	cur                       atomic.Pointer[state]
}

type state struct {
	cert    *tls.Certificate
	leaf    *x509.Certificate
	clients *x509.CertPool // nil without a client CA file
}

// NewServer reads the certificate and key (PEM) and, if caFile is not
// empty, the CA certificates client certificates must chain to.
func NewServer(certFile, keyFile, caFile string) (*Server, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: want both a certificate and a key file")
	}
	s := &Server{certFile: certFile, keyFile: keyFile, caFile: caFile}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the files. On an error the current ones stay in use.
func (s *Server) Reload() error {
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("tls: certificate %s, key %s: %w", s.certFile, s.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("tls: certificate %s: %w", s.certFile, err)
	}
	cert.Leaf = leaf
	st := &state{cert: &cert, leaf: leaf}
	if s.caFile != "" {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return fmt.Errorf("tls: client CA file: %w", err)
		}
		st.clients = x509.NewCertPool()
		if !st.clients.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls: client CA file %s holds no PEM certificate", s.caFile)
		}
	}
	s.cur.Store(st)
	return nil
}

// MutualTLS reports whether client certificates are checked (a client CA
// file was given).
func (s *Server) MutualTLS() bool { return s.caFile != "" }

// Describe names the current certificate for the log: its subject, DNS
// names and expiry.
func (s *Server) Describe() string {
	st := s.cur.Load()
	return fmt.Sprintf("subject %q, names %s, expires %s", st.leaf.Subject.String(),
		strings.Join(st.leaf.DNSNames, ","), st.leaf.NotAfter.UTC().Format(time.RFC3339))
}

// Config returns a server configuration that takes the current
// certificate at each handshake. With a client CA file, client
// certificates are checked against it with the given policy:
// tls.RequireAndVerifyClientCert (the native listener: no certificate, no
// connection) or tls.VerifyClientCertIfGiven (the HTTP listener, whose
// health probes carry none). Without one, no client certificate is asked
// for. TLS 1.2 is the minimum.
func (s *Server) Config(policy tls.ClientAuthType) *tls.Config {
	build := func(st *state) *tls.Config {
		c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*st.cert}}
		if st.clients != nil {
			c.ClientCAs = st.clients
			c.ClientAuth = policy
		}
		return c
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The outer configuration only hands over the current one; the
		// certificate callback is there for servers (net/http) that want
		// to see a certificate source on it.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cur.Load().cert, nil },
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return build(s.cur.Load()), nil
		},
	}
}
