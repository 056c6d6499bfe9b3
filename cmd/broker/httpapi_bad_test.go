package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/internal/testtool"
	"github.com/haraqa/haraqa/record"
)

// idleConns is how many idle HTTP connections the bad-input test holds.
const idleConns = 10_000

// TestHTTPAPIBadInput sends the built broker's HTTP API bad input.
// Promises: malformed JSON, a line over the limit and a wrong Content-Type
// get a clear JSON answer naming the problem (and the line) and store
// nothing of their body; invalid UTF-8 in a text body is stored as the
// bytes sent (as README documents) and read back as value_b64; a body sent
// too slowly (slow-loris) is cut with 408 and stores nothing; with 10,000
// idle HTTP connections open, produces over HTTP and over the native
// protocol still work.
func TestHTTPAPIBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the broker binary; skipped in -short")
	}
	testtool.Need(t, "curl", "curl")
	needFileLimit(t, idleConns+1000)
	bin := buildBroker(t)
	dir := t.TempDir()
	b := startHTTPBroker(t, bin, dir, "-http-max-line", "100", "-http-request-timeout", "2s")
	native, err := dialRaw(b.sock)
	if err != nil {
		t.Fatal(err)
	}
	batch, _ := record.AppendBatch(nil, []byte("native first"))
	if _, err := native.produce("bad", batch); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ctype, body string
		code              int
		reason            string
	}{
		{"malformed NDJSON", "application/x-ndjson", "{\"ok\":1}\n{\"broken\": \n", 400, `"line":2`},
		{"malformed JSON array", "application/json", `["ok", {"value": }]`, 400, `"line":2`},
		{"line over the limit", "text/plain", "ok\n" + strings.Repeat("y", 101) + "\n", 400, `"line":2`},
		{"wrong Content-Type", "application/xml", "<ok/>", 415, "Content-Type"},
	} {
		r := b.curl(t, "-H", "Content-Type: "+c.ctype, "--data-binary", "@"+writeTemp(t, c.body), "/topics/bad/messages")
		if r.code != c.code || !strings.Contains(r.body, c.reason) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %q %s, want %d naming %s", c.name, r.code, r.header.Get("Content-Type"), r.body, c.code, c.reason)
		}
	}
	// Invalid UTF-8 in text mode: stored as the bytes sent.
	b.curl(t, "-H", "Content-Type: text/plain", "--data-binary", "@"+writeTemp(t, "bytes \xff\xfe end\n"), "/topics/bad/messages").want(t, "invalid UTF-8 text", 200)
	r := b.curl(t, "/topics/bad/messages?offset=1")
	if !strings.Contains(r.body, `"value_b64":"Ynl0ZXMg//4gZW5k"`) {
		t.Fatalf("invalid UTF-8 read back as %s", r.body)
	}

	// Slow-loris body: the headers and half a line, then silence.
	slow, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /topics/bad/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nslow line one\nslow li")
	slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow body: %v %v", resp, err)
	}

	// Nothing of the refused bodies was stored.
	got := native.readAll(t, "bad")
	if len(got) != 2 || got[0] != "native first" || got[1] != "bytes \xff\xfe end" {
		t.Fatalf("the topic holds %v", got)
	}

	// 10,000 idle connections: opened, then left silent.
	conns := openIdle(t, strings.TrimPrefix(b.url, "http://"), idleConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	b.curl(t, "-H", "Content-Type: text/plain", "-d", "with idle conns", "/topics/bad/messages").want(t, "produce beside 10,000 idle connections", 200)
	batch, _ = record.AppendBatch(nil, []byte("native beside idle"))
	if _, err := native.produce("bad", batch); err != nil {
		t.Fatalf("native produce beside 10,000 idle HTTP connections: %v", err)
	}
	// The last idle connections opened were accepted and are served.
	for _, c := range conns[len(conns)-20:] {
		c.SetDeadline(time.Now().Add(30 * time.Second)) // a bound on a hang, not a speed: the machine may be loaded
		fmt.Fprintf(c, "GET /topics/bad HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("an idle connection, woken: %v %v", resp, err)
		}
	}
	if got := native.readAll(t, "bad"); len(got) != 4 {
		t.Fatalf("the topic holds %d messages, want 4: %v", len(got), got)
	}
}

// openIdle opens n TCP connections to addr, 64 dialing at a time.
func openIdle(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		t.Fatalf("opening %d idle connections: %v", n, err)
	}
	return conns
}

// needFileLimit raises this process's descriptor limit to at least n, or
// fails naming the hard limit.
func needFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur >= n {
		return
	}
	if rl.Max < n {
		t.Fatalf("the descriptor limit's hard value is %d; this test needs %d (ulimit -Hn)", rl.Max, n)
	}
	old := rl
	rl.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// writeTemp writes body to a temporary file and returns its path.
func writeTemp(t *testing.T, body string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "body")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(body)
	f.Close()
	return filepath.Clean(f.Name())
}
