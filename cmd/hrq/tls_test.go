package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/internal/testtls"
)

// TestTLSFlags: hrq reaches a broker that requires mutual TLS with
// --tls-ca, --tls-cert and --tls-key on a tls:// address; without the
// client certificate, or trusting another CA, it is refused with a
// connection error (exit 3); --tls-insecure skips the broker's check, not
// the broker's check of the client; TLS flags on a clear-text address are
// a usage error.
func TestTLSFlags(t *testing.T) {
	ca, other := testtls.NewCA(t, "hrq test CA"), testtls.NewCA(t, "other CA")
	srv, cl := ca.Server(t, "broker"), ca.Client(t, "hrq", "")
	b := startBroker(t, "-addr", "127.0.0.1:0", "-tls-cert", srv.CertFile, "-tls-key", srv.KeyFile, "-tls-client-ca", ca.File)
	m := regexp.MustCompile(`msg=listening network=tcp addr=(\S+)`).FindStringSubmatch(b.logText())
	if m == nil {
		t.Fatalf("no TCP listener in the log:\n%s", b.logText())
	}
	addr := "tls://" + m[1]

	mustHRQ(t, addr, strings.NewReader("hello\n"), "produce", "sec", "--tls-ca", ca.File, "--tls-cert", cl.CertFile, "--tls-key", cl.KeyFile)
	if out := mustHRQ(t, addr, nil, "consume", "sec", "--tls-ca", ca.File, "--tls-cert", cl.CertFile, "--tls-key", cl.KeyFile); out != "hello\n" {
		t.Fatalf("consume over TLS: %q", out)
	}
	if out := mustHRQ(t, addr, nil, "consume", "sec", "--tls-insecure", "--tls-cert", cl.CertFile, "--tls-key", cl.KeyFile); out != "hello\n" {
		t.Fatalf("consume with --tls-insecure: %q", out)
	}
	for name, args := range map[string][]string{
		"no client certificate": {"--tls-ca", ca.File},
		"another CA":            {"--tls-ca", other.File, "--tls-cert", cl.CertFile, "--tls-key", cl.KeyFile},
		"insecure, no cert":     {"--tls-insecure"},
	} {
		if r := hrq(t, addr, nil, append([]string{"topics", "list"}, args...)...); r.code != 3 {
			t.Errorf("%s: want exit 3 (connection), got %v", name, r)
		}
	}
	if r := hrq(t, "tcp://"+m[1], nil, "topics", "list", "--tls-ca", ca.File); r.code != 2 || !strings.Contains(r.stderr, "tls://") {
		t.Errorf("--tls-ca with a tcp:// address: %v", r)
	}
}
