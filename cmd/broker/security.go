package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/internal/tlsconf"
	"github.com/prometheus/client_golang/prometheus"
)

// security holds what -tls-cert, -tls-key, -tls-client-ca and -auth-file
// set up; each is nil when not set.
type security struct {
	tls  *tlsconf.Server
	auth *auth.Authorizer
}

// loadSecurity reads the certificate files and the auth file.
func loadSecurity(c *config) (*security, error) {
	s := &security{}
	if c.tlsCert != "" || c.tlsKey != "" {
		t, err := tlsconf.NewServer(c.tlsCert, c.tlsKey, c.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert/-tls-key/-tls-client-ca: %w", err)
		}
		s.tls = t
	}
	if c.authFile != "" {
		a, err := auth.Load(c.authFile, c.token)
		if err != nil {
			return nil, fmt.Errorf("-auth-file: %w", err)
		}
		s.auth = a
	}
	return s, nil
}

// nativeTLS is the TCP listener's TLS configuration: with a client CA,
// a client without a certificate that chains to it is refused.
func (s *security) nativeTLS() *tls.Config {
	if s == nil || s.tls == nil {
		return nil
	}
	return s.tls.Config(tls.RequireAndVerifyClientCert)
}

// httpTLS is the HTTP listener's: a client certificate is checked when
// given but not required, so that health probes and Prometheus need none.
func (s *security) httpTLS() *tls.Config {
	if s == nil || s.tls == nil {
		return nil
	}
	return s.tls.Config(tls.VerifyClientCertIfGiven)
}

// logStart logs what is in force.
func (s *security) logStart(log *slog.Logger, c *config) {
	if s.tls != nil {
		log.Info("TLS on the TCP and HTTP listeners", "certificate", s.tls.Describe(), "mutual_tls", s.tls.MutualTLS())
	}
	if s.auth != nil {
		log.Info("permissions from the auth file", "file", s.auth.Path(), "clients", s.auth.Clients(), "token", c.token != "")
	}
}

// reloadOnHUP re-reads the certificates (and the auth file) on each SIGHUP
// until stop closes. Connections already open keep their handshake; a
// reload that fails keeps the files in use and logs why.
func (s *security) reloadOnHUP(log *slog.Logger, stop <-chan struct{}) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-stop:
				return
			case <-hup:
				s.reload(log)
			}
		}
	}()
}

func (s *security) reload(log *slog.Logger) {
	if s.tls == nil && s.auth == nil {
		log.Info("SIGHUP: nothing to reload (no -tls-cert, no -auth-file)")
	}
	if s.auth != nil {
		if err := s.auth.Reload(); err != nil {
			log.Error("SIGHUP: auth file not reloaded; the permissions in force stay", "err", err)
		} else {
			log.Info("SIGHUP: auth file reloaded", "file", s.auth.Path(), "clients", s.auth.Clients())
		}
	}
	if s.tls != nil {
		if err := s.tls.Reload(); err != nil {
			log.Error("SIGHUP: certificates not reloaded; the old ones stay in use", "err", err)
		} else {
			log.Info("SIGHUP: certificates reloaded", "certificate", s.tls.Describe())
		}
	}
}

// registerMetrics exports the refusals: haraqa_auth_refused_total by
// operation, and op="connect" for clients the file does not list.
func (s *security) registerMetrics(reg *prometheus.Registry) {
	if s == nil || s.auth == nil || reg == nil {
		return
	}
	const name, help = "haraqa_auth_refused_total", "Requests refused by the -auth-file permissions, by operation; op=\"connect\": connections whose token or certificate no client in the file has."
	for _, op := range auth.Ops() {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"op": op.String()}},
			func() float64 { return float64(s.auth.Refused(op)) }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"op": "connect"}},
		func() float64 { return float64(s.auth.RefusedClients()) }))
}
