package tlsconf

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/internal/testtls"
)

// TestNewServerErrors: certificate files the broker cannot use stop it at
// start with an error naming the file, never a listener without TLS.
func TestNewServerErrors(t *testing.T) {
	ca := testtls.NewCA(t, "ca")
	good := ca.Server(t, "b")
	other := ca.Server(t, "c")
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		name, cert, key, ca, want string
	}{
		{"no key", good.CertFile, "", "", "both"},
		{"missing cert", filepath.Join(t.TempDir(), "none.pem"), good.KeyFile, "", "none.pem"},
		{"key of another cert", good.CertFile, other.KeyFile, "", good.CertFile},
		{"missing client CA", good.CertFile, good.KeyFile, filepath.Join(t.TempDir(), "noca.pem"), "noca.pem"},
		{"client CA without PEM", good.CertFile, good.KeyFile, notPEM, "no PEM certificate"},
	} {
		if _, err := NewServer(tc.cert, tc.key, tc.ca); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
	s, err := NewServer(good.CertFile, good.KeyFile, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	if !s.MutualTLS() || !strings.Contains(s.Describe(), "CN=b") {
		t.Errorf("mutual %v, %s", s.MutualTLS(), s.Describe())
	}
	cfg, err := s.Config(tls.RequireAndVerifyClientCert).GetConfigForClient(nil)
	if err != nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("per-handshake config: %+v, %v", cfg, err)
	}
}
