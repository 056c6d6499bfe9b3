package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/internal/testtls"
)

// authFileText gives each token client one operation on logs.*; the
// certificate client may consume everything.
func authFileText(consumerProduces bool) string {
	extra := ""
	if consumerProduces {
		extra = "produce = [\"logs.*\"]\n"
	}
	return fmt.Sprintf(`
[[client]]
name = "producer"
token-sha256 = %q
produce = ["logs.*"]

[[client]]
name = "consumer"
token-sha256 = %q
consume = ["logs.*"]
%s
[[client]]
name = "admin"
token-sha256 = %q
admin = ["logs.*"]

[[client]]
name = "reader"
cert-subject = "CN=reader,O=acme"
consume = ["*"]
`, auth.HashToken("p-tok"), auth.HashToken("c-tok"), extra, auth.HashToken("a-tok"))
}

// TestPermissions: with -auth-file, each client can do exactly what the
// file gives it, on exactly the topics its patterns match: every operation
// is tried by the client allowed it (works) and by the others (refused
// with Unauthorized naming the operation and the topic, the connection
// going on), a pattern "logs.*" does not reach "logs", a refused produce
// stores nothing and creates no topic, listings show only permitted
// topics, clients the file does not know cannot connect, a TLS client is
// known by its certificate's subject, refusals are counted on /metrics,
// and SIGHUP reloads the file for connections already open.
func TestPermissions(t *testing.T) {
	dir := t.TempDir()
	authPath := filepath.Join(dir, "auth.toml")
	if err := os.WriteFile(authPath, []byte(authFileText(false)), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := testtls.NewCA(t, "auth test CA")
	srv := ca.Server(t, "broker")
	sock := filepath.Join(dir, "b.sock")
	p := runInProcess(t, "-addr", "127.0.0.1:0", "-unix", sock, "-http", "127.0.0.1:0", "-auth-file", authPath, "-token", "root",
		"-tls-cert", srv.CertFile, "-tls-key", srv.KeyFile, "-tls-client-ca", ca.File, filepath.Join(dir, "data"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(token string) *client.Client {
		t.Helper()
		c, err := client.Dial(ctx, "unix://"+sock, client.WithToken(token), client.WithReconnect(-1, 0))
		if err != nil {
			t.Fatalf("token %q: %v", token, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	root := dial("root") // -token: everything
	for _, topic := range []string{"logs.a", "logs.del", "logs", "other"} {
		if err := root.CreateTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := root.Produce(ctx, "logs.a", []byte("seed")); err != nil {
		t.Fatal(err)
	}
	clients := map[string]*client.Client{"producer": dial("p-tok"), "consumer": dial("c-tok"), "admin": dial("a-tok")}

	ops := []struct {
		name  string
		op    auth.Op
		who   string // the client allowed it
		topic string
		do    func(c *client.Client, topic string) error
	}{
		{"produce", auth.Produce, "producer", "logs.a", func(c *client.Client, tp string) error {
			_, err := c.Produce(ctx, tp, []byte("m"))
			return err
		}},
		{"consume", auth.Consume, "consumer", "logs.a", func(c *client.Client, tp string) error {
			_, err := c.Consume(ctx, tp, 0, 1, nil)
			return err
		}},
		{"offsets", auth.Consume, "consumer", "logs.a", func(c *client.Client, tp string) error {
			_, _, err := c.Offsets(ctx, tp)
			return err
		}},
		{"watch", auth.Consume, "consumer", "logs.a", func(c *client.Client, tp string) error {
			wctx, wcancel := context.WithCancel(ctx)
			defer wcancel()
			ev, err := c.Watch(wctx, tp)
			if err != nil {
				return err
			}
			if e := <-ev; e.Err != nil {
				return e.Err
			}
			return nil
		}},
		{"create", auth.Admin, "admin", "logs.new", func(c *client.Client, tp string) error { return c.CreateTopic(ctx, tp) }},
		{"truncate", auth.Admin, "admin", "logs.a", func(c *client.Client, tp string) error {
			_, err := c.TruncateBefore(ctx, tp, 0)
			return err
		}},
		{"delete", auth.Admin, "admin", "logs.del", func(c *client.Client, tp string) error { return c.DeleteTopic(ctx, tp) }},
	}
	refused := func(what string, err error, op auth.Op, topic string) {
		t.Helper()
		want := fmt.Sprintf("may not %s topic %q", op, topic)
		if !errors.Is(err, client.ErrUnauthorized) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want Unauthorized saying %s", what, err, want)
		}
	}
	for _, o := range ops {
		for name, c := range clients {
			if name == o.who {
				continue
			}
			refused(fmt.Sprintf("%s by %s", o.name, name), o.do(c, o.topic), o.op, o.topic)
		}
		// The pattern edge: logs.* does not match logs.
		edge := "logs"
		if o.name == "create" {
			edge = "logsx"
		}
		refused(fmt.Sprintf("%s of %s by %s", o.name, edge, o.who), o.do(clients[o.who], edge), o.op, edge)
		if err := o.do(clients[o.who], o.topic); err != nil {
			t.Errorf("%s by %s: %v", o.name, o.who, err)
		}
	}

	// Nothing of the refused produces was stored, no topic was created.
	if start, end, err := root.Offsets(ctx, "logs.a"); err != nil || end-start > 2 || end != 2 {
		t.Errorf("logs.a holds [%d, %d) (%v): want the seed and the producer's one message", start, end, err)
	}
	if _, end, err := root.Offsets(ctx, "logs"); err != nil || end != 0 {
		t.Errorf("logs ends at %d (%v): a refused produce stored something", end, err)
	}
	if _, _, err := root.Offsets(ctx, "logsx"); !errors.Is(err, client.ErrTopicNotFound) {
		t.Errorf("logsx: %v: a refused create made it", err)
	}

	// Listings show only topics the client has a permission on.
	for name, c := range clients {
		got, err := c.ListTopics(ctx, "", "")
		if err != nil {
			t.Fatalf("%s lists: %v", name, err)
		}
		if slices.Contains(got, "other") || slices.Contains(got, "logs") || !slices.Contains(got, "logs.a") {
			t.Errorf("%s sees %q: want logs.* only", name, got)
		}
	}

	// Unknown clients cannot connect.
	for _, tok := range []string{"", "guess"} {
		if c, err := client.Dial(ctx, "unix://"+sock, client.WithToken(tok), client.WithReconnect(-1, 0)); !errors.Is(err, client.ErrUnauthorized) {
			if c != nil {
				c.Close()
			}
			t.Errorf("token %q: %v, want Unauthorized", tok, err)
		}
	}

	// A TLS client is known by its certificate: reader may consume
	// anything, nothing else; a certificate the file does not name is
	// refused.
	tlsDial := func(pair testtls.Pair) (*client.Client, error) {
		return client.Dial(ctx, "tls://"+p.addrs[0].String(), client.WithReconnect(-1, 0),
			client.WithTLSConfig(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{pair.TLS}}))
	}
	reader, err := tlsDial(ca.Client(t, "reader", "acme"))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.Consume(ctx, "other", 0, 1, nil); err != nil {
		t.Errorf("reader consumes other: %v", err)
	}
	_, err = reader.Produce(ctx, "other", []byte("x"))
	refused("reader produces", err, auth.Produce, "other")
	if c, err := tlsDial(ca.Client(t, "stranger", "acme")); !errors.Is(err, client.ErrUnauthorized) || !strings.Contains(err.Error(), "CN=stranger,O=acme") {
		if c != nil {
			c.Close()
		}
		t.Errorf("a certificate the file does not name: %v", err)
	}

	// Refusals are counted on /metrics, which needs a client with admin on
	// every topic (here the -token's root); the probes need none.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	get := func(path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+p.addrs[2].String()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	code, metrics := get("/metrics", "root")
	if code != http.StatusOK {
		t.Fatalf("/metrics with the root token: %d %s", code, metrics)
	}
	for op, want := range map[string]int{"produce": 4, "consume": 9, "admin": 9, "connect": 3} {
		m := regexp.MustCompile(`haraqa_auth_refused_total\{op="` + op + `"\} (\d+)`).FindStringSubmatch(metrics)
		if m == nil || m[1] != fmt.Sprint(want) {
			t.Errorf("haraqa_auth_refused_total{op=%q}: %v, want %d", op, m, want)
		}
	}
	// The status page and /metrics show every topic's name: a client
	// without a token, or one without admin on every topic, gets none of it.
	for _, path := range []string{"/metrics", "/"} {
		for token, want := range map[string]int{"": http.StatusUnauthorized, "nobody": http.StatusUnauthorized,
			"a-tok": http.StatusForbidden, "c-tok": http.StatusForbidden, "root": http.StatusOK} {
			if code, body := get(path, token); code != want || (code != http.StatusOK && strings.Contains(body, "logs.a")) {
				t.Errorf("GET %s with token %q: %d, want %d (%.80s)", path, token, code, want, body)
			}
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(path, ""); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", path, code, body)
		}
	}

	// SIGHUP reloads the file: the consumer's open connection may now
	// produce.
	if err := os.WriteFile(authPath, []byte(authFileText(true)), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	for {
		_, err := clients["consumer"].Produce(ctx, "logs.a", []byte("after reload"))
		if err == nil {
			break
		}
		if !errors.Is(err, client.ErrUnauthorized) || ctx.Err() != nil {
			t.Fatalf("produce after the reload: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
