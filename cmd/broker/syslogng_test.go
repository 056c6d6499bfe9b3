package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/internal/testtool"
)

// syslogNGConfig tails in and ships every line as one message to the
// broker's HTTP API, 1,000 lines a request, as text/plain; it retries a
// failed request (broker down, 503) and, with flow control, never drops a
// line while the destination is away.
const syslogNGConfig = `@version: 3.38
options { stats-freq(0); time-reopen(1); log-fifo-size(200000); };
source s_in { file("%s" follow-freq(0.1) flags(no-parse) log-fetch-limit(1000) log-iw-size(20000)); };
destination d_haraqa { http(url("%s/topics/shipped/messages") method("POST")
  headers("Content-Type: text/plain") body("$MSG") batch-lines(1000) batch-timeout(200)
  workers(1) retries(1000) persist-name("haraqa")); };
log { source(s_in); destination(d_haraqa); flags(flow-control); };
`

// TestSlowSyslogNGHTTP ships a file through a real log shipper, syslog-ng's
// http() destination, with its stock settings. Promise: 100,000 lines
// written to the file arrive in the topic once each, in order, byte for
// byte (read back through the Go client), although the broker is stopped
// and restarted in the middle of the run: the shipper's retries lose
// nothing and duplicate nothing.
func TestSlowSyslogNGHTTP(t *testing.T) {
	slowOnly(t)
	slng := testtool.Need(t, "syslog-ng", "syslog-ng-core syslog-ng-mod-http")
	const total = 100_000
	bin := buildBroker(t)
	dir := t.TempDir()
	port := freeTCPPort(t)
	start := func() *httpBroker {
		return startHTTPBroker(t, bin, dir, "-http", port)
	}
	b := start()

	work := t.TempDir()
	in := filepath.Join(work, "in.log")
	if err := os.WriteFile(in, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(work, "syslog-ng.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(syslogNGConfig, in, b.url)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sl := exec.CommandContext(ctx, slng, "-F", "-e", "--no-caps", "-f", conf, "-R", filepath.Join(work, "persist"),
		"-c", filepath.Join(work, "ctl"), "-p", filepath.Join(work, "pid"))
	var slog lockedBuffer
	sl.Stdout, sl.Stderr = &slog, &slog
	if err := sl.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sl.Process.Signal(syscall.SIGTERM); sl.Wait() }()

	// The lines: numbered, random lengths, some multi-byte UTF-8.
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"GET", "/index.html", "200", "ünïcødé", "日本語", "key=value", `"quoted"`, "a\\b", "-", "[x]"}
	lines := make([]string, total)
	for i := range lines {
		var sb strings.Builder
		fmt.Fprintf(&sb, "%06d", i)
		for range rng.IntN(12) {
			sb.WriteString(" " + words[rng.IntN(len(words))])
		}
		lines[i] = sb.String()
	}
	f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func(from, to int) {
		for i := from; i < to; i += 5000 {
			var sb strings.Builder
			for _, l := range lines[i:min(i+5000, to)] {
				sb.WriteString(l + "\n")
			}
			if _, err := f.WriteString(sb.String()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c, err := client.Dial(ctx, "unix://"+b.sock)
	if err != nil {
		t.Fatal(err)
	}
	end := func() uint64 {
		_, e, err := c.Offsets(ctx, "shipped")
		if err != nil {
			return 0
		}
		return e
	}
	write(0, total/2)
	// Stop the broker while the shipper is busy, then start it again.
	for deadline := time.Now().Add(time.Minute); end() < total/4; {
		if time.Now().After(deadline) {
			t.Fatalf("the shipper delivered %d lines in a minute\nsyslog-ng:\n%s\nbroker:\n%s", end(), slog.String(), b.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stoppedAt := end()
	c.Close()
	b.stop(t)
	write(total/2, total*3/4) // written while the broker is down
	time.Sleep(2 * time.Second)
	b = start()
	write(total*3/4, total)
	c, err = client.Dial(ctx, "unix://"+b.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(2 * time.Minute); end() < total; {
		if time.Now().After(deadline) {
			t.Fatalf("the topic holds %d of %d lines after 2 minutes\nsyslog-ng:\n%s", end(), total, slog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // a duplicate would land now
	if e := end(); e != total {
		t.Fatalf("the topic holds %d messages for %d lines: duplicates", e, total)
	}
	// The shipper saw the broker go: its log says it retried.
	t.Logf("broker stopped at %d of %d lines; syslog-ng's log:\n%s", stoppedAt, total, slog.String())
	if stoppedAt >= total/2 {
		t.Fatalf("the broker was stopped after the shipper had sent the first half (%d): no request was in flight", stoppedAt)
	}
	var got []string
	var buf client.ConsumeBuffer
	for off := uint64(0); off < total; {
		ms, err := c.Consume(ctx, "shipped", off, 10_000, &buf)
		if err != nil {
			t.Fatal(err)
		}
		for m := range ms.All() {
			got = append(got, string(m.Value))
		}
		off = ms.Next()
	}
	for i := range lines {
		if got[i] != lines[i] {
			t.Fatalf("message %d is %q, line %d was %q", i, got[i], i, lines[i])
		}
	}
}

// freeTCPPort returns a 127.0.0.1 address that was free a moment ago.
func freeTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
