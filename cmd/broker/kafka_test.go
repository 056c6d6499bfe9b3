package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/internal/testtool"
)

// Promise: -kafka-addr serves the Kafka protocol on the broker's topics:
// what kcat produces there reads back through the native protocol, and
// without the flag no Kafka listener runs.
func TestKafkaAddrFlag(t *testing.T) {
	kcat := testtool.Need(t, "kcat", "kcat")
	dir := t.TempDir()
	p := runInProcess(t, dir, "-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0")
	if len(p.addrs) != 2 {
		t.Fatalf("ready addresses %v, want native and Kafka", p.addrs)
	}
	kaddr := p.addrs[1].String()
	cmd := exec.Command(kcat, "-b", kaddr, "-P", "-t", "flagged", "-K:")
	cmd.Stdin = strings.NewReader("k1:one\nk2:two\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	c, err := client.Dial(t.Context(), "tcp://"+p.addrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ms, err := c.Consume(t.Context(), "flagged", 0, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range ms.All() {
		got = append(got, string(m.Key)+":"+string(m.Value))
	}
	if strings.Join(got, ",") != "k1:one,k2:two" {
		t.Fatalf("native read %v", got)
	}
	p.stop(t)
	q := runInProcess(t, t.TempDir(), "-addr", "127.0.0.1:0")
	if len(q.addrs) != 1 {
		t.Fatalf("without -kafka-addr: ready addresses %v", q.addrs)
	}
}

// Promise: a broker that requires a token never serves Kafka without a
// check: -kafka-addr with -token and no client certificates is refused at
// start.
func TestKafkaAddrRefusedWithToken(t *testing.T) {
	var log lockedBuffer
	code := run([]string{"-http", "", "-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", "-token", "s3cret", t.TempDir()}, &log, nil)
	if code != exitFailure || !strings.Contains(log.String(), "-kafka-addr with -token") {
		t.Fatalf("exit %d:\n%s", code, &log)
	}
	authFile := filepath.Join(t.TempDir(), "auth.toml")
	if err := os.WriteFile(authFile, []byte("[[client]]\nname = \"a\"\ncert-subject = \"CN=a\"\nconsume = [\"*\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log = lockedBuffer{}
	code = run([]string{"-http", "", "-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", "-auth-file", authFile, t.TempDir()}, &log, nil)
	if code != exitFailure || !strings.Contains(log.String(), "-kafka-addr with -auth-file") {
		t.Fatalf("with -auth-file: exit %d:\n%s", code, &log)
	}
}
