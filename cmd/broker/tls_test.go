package main

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/internal/testtls"
)

// dialTLS dials the broker's TLS listener with cfg; no reconnecting, so
// that a dropped connection shows as an error.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (*client.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return client.Dial(ctx, "tls://"+addr, client.WithTLSConfig(cfg), client.WithReconnect(-1, 0))
}

// roundTrip produces one message and reads it back.
func roundTrip(t *testing.T, c *client.Client, topic, msg string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	off, err := c.Produce(ctx, topic, []byte(msg))
	if err != nil {
		return err
	}
	msgs, err := c.Consume(ctx, topic, off, 1, nil)
	if err != nil {
		return err
	}
	if msgs.Len() != 1 || string(msgs.At(0).Value) != msg {
		t.Fatalf("read back %d messages, want %q", msgs.Len(), msg)
	}
	return nil
}

// TestMutualTLS: with -tls-client-ca, only a client holding a certificate
// signed by that CA reaches the broker's data: a client without a
// certificate, one with a certificate from another CA, one that does not
// trust the broker's CA and one speaking clear text are all refused; the
// right one produces and consumes. The HTTP listener speaks TLS with the
// same certificate and asks probes for no client certificate.
func TestMutualTLS(t *testing.T) {
	ca, other := testtls.NewCA(t, "haraqa test CA"), testtls.NewCA(t, "another CA")
	srv := ca.Server(t, "broker")
	good, foreign := ca.Client(t, "app", "acme"), other.Client(t, "app", "acme")
	p := runInProcess(t, "-addr", "127.0.0.1:0", "-http", "127.0.0.1:0", "-tls-cert", srv.CertFile, "-tls-key", srv.KeyFile,
		"-tls-client-ca", ca.File, t.TempDir())
	addr := p.addrs[0].String()

	refused := map[string]*tls.Config{
		"no client certificate":           {RootCAs: ca.Pool()},
		"a certificate from another CA":   {RootCAs: ca.Pool(), Certificates: []tls.Certificate{foreign.TLS}},
		"a client that trusts another CA": {RootCAs: other.Pool(), Certificates: []tls.Certificate{good.TLS}},
	}
	for name, cfg := range refused {
		c, err := dialTLS(t, addr, cfg)
		if err == nil {
			err = roundTrip(t, c, "secret", "should not be stored")
			c.Close()
		}
		if err == nil {
			t.Errorf("%s: the broker served it", name)
		} else {
			t.Logf("%s: refused: %v", name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := client.Dial(ctx, "tcp://"+addr, client.WithReconnect(-1, 0)); err == nil {
		c.Close()
		t.Errorf("a clear-text client got through the TLS listener")
	}

	c, err := dialTLS(t, addr, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{good.TLS}})
	if err != nil {
		t.Fatalf("the right certificate: %v", err)
	}
	defer c.Close()
	if err := roundTrip(t, c, "secret", "m1"); err != nil {
		t.Fatalf("the right certificate: %v", err)
	}
	if _, end, err := c.Offsets(ctx, "secret"); err != nil || end != 1 {
		t.Fatalf("topic secret ends at %d (%v): the refused clients stored something", end, err)
	}

	// HTTPS on -http, without a client certificate (probes).
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	resp, err := hc.Get("https://" + p.addrs[1].String() + "/healthz")
	if err != nil {
		t.Fatalf("https /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("https /healthz: %s", resp.Status)
	}
}

// TestTLSReloadOnSIGHUP: replacing the certificate files and sending
// SIGHUP makes new connections use the new certificate while a connection
// opened before keeps working, never dropped.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	oldCA, newCA := testtls.NewCA(t, "old CA"), testtls.NewCA(t, "new CA")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	install := func(p testtls.Pair) {
		for src, dst := range map[string]string{p.CertFile: certFile, p.KeyFile: keyFile} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst+".tmp", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dst+".tmp", dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(oldCA.Server(t, "broker"))
	p := runInProcess(t, "-addr", "127.0.0.1:0", "-http", "127.0.0.1:0", "-tls-cert", certFile, "-tls-key", keyFile, t.TempDir())
	addr := p.addrs[0].String()
	httpsOK := func(ca *testtls.CA) error {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
		resp, err := hc.Get("https://" + p.addrs[1].String() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := httpsOK(oldCA); err != nil {
		t.Fatalf("https before the reload: %v", err)
	}

	before, err := dialTLS(t, addr, &tls.Config{RootCAs: oldCA.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	if err := roundTrip(t, before, "r", "before"); err != nil {
		t.Fatal(err)
	}

	install(newCA.Server(t, "broker"))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := dialTLS(t, addr, &tls.Config{RootCAs: newCA.Pool()})
		if err == nil {
			err = roundTrip(t, c, "r", "after")
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate is not served 20s after SIGHUP: %v\n%s", err, p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c, err := dialTLS(t, addr, &tls.Config{RootCAs: oldCA.Pool()}); err == nil {
		c.Close()
		t.Errorf("a new connection still gets the old certificate")
	}
	// The HTTP listener takes the new certificate too.
	if err := httpsOK(newCA); err != nil {
		t.Errorf("https after the reload: %v", err)
	}
	if httpsOK(oldCA) == nil {
		t.Errorf("https still serves the old certificate after the reload")
	}
	// The connection from before the reload is the same one, still serving.
	if err := roundTrip(t, before, "r", "still"); err != nil {
		t.Fatalf("the connection opened before SIGHUP: %v", err)
	}

	// A reload that fails (a key that does not match) keeps the current
	// certificate and says so.
	bad := newCA.Server(t, "broker")
	install(testtls.Pair{CertFile: bad.CertFile, KeyFile: oldCA.Server(t, "x").KeyFile})
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	for !containsLog(p, "certificates not reloaded") {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("no log of the failed reload:\n%s", p.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := dialTLS(t, addr, &tls.Config{RootCAs: newCA.Pool()})
	if err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	c.Close()
}

func containsLog(p *inProcess, s string) bool { return strings.Contains(p.log.String(), s) }
